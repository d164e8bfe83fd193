//! A task's output to the stage after (`task-input`): records go into one
//! buffer per consumer and leave in batches; a batch is sent when full,
//! every consumer's at once, and each call returns once the consumer took
//! it (backpressure). Barriers and the end follow what was buffered
//! before them.

use futures::future::try_join_all;

use crate::weir::flink::task_input_client::TaskInputGateway;

/// A batch leaves once it holds this many bytes.
const BATCH: usize = 64 << 10;

pub struct Output {
    /// This task's subtask index: the producer its consumers know it as.
    me: u32,
    consumers: Vec<TaskInputGateway>,
    buffers: Vec<Vec<u8>>,
}

impl Output {
    /// Connects subtask `me` to its consumers.
    ///
    /// # Errors
    ///
    /// If one cannot be reached.
    pub async fn connect(me: u32, addresses: &[String]) -> Result<Self, String> {
        let mut consumers = Vec::with_capacity(addresses.len());
        for address in addresses {
            let consumer = TaskInputGateway::connect(address.clone(), None)
                .await
                .map_err(|error| format!("cannot reach consumer {address}: {error}"))?;
            // A consumer may hold a batch back for as long as it is busy.
            consumer.set_timeout(u64::MAX);
            consumers.push(consumer);
        }
        Ok(Self { me, buffers: vec![Vec::new(); consumers.len()], consumers })
    }

    /// How many consumers it has.
    pub fn consumers(&self) -> usize {
        self.consumers.len()
    }

    /// The buffer of consumer `index`, to append records to.
    pub fn buffer(&mut self, index: usize) -> &mut Vec<u8> {
        &mut self.buffers[index]
    }

    /// Sends the buffers that hold at least `least` bytes (and any), all
    /// at once.
    async fn send(&mut self, least: usize) -> Result<(), String> {
        let me = self.me;
        let sends =
            self.consumers.iter().zip(&mut self.buffers).filter(|(_, b)| !b.is_empty() && b.len() >= least).map(
                |(consumer, buffer)| {
                    let batch = std::mem::take(buffer);
                    async move { answer(consumer, consumer.push(me, batch).await) }
                },
            );
        try_join_all(sends).await.map(drop)
    }

    /// Sends the full buffers.
    pub async fn flush_full(&mut self) -> Result<(), String> {
        self.send(BATCH).await
    }

    /// Sends what is buffered, then a barrier for `checkpoint` to every
    /// consumer.
    pub async fn barrier(&mut self, checkpoint: u64) -> Result<(), String> {
        self.send(0).await?;
        let me = self.me;
        try_join_all(
            self.consumers
                .iter()
                .map(|consumer| async move { answer(consumer, consumer.barrier(me, checkpoint).await) }),
        )
        .await
        .map(drop)
    }

    /// Sends what is buffered, then tells every consumer that this task
    /// sends nothing more.
    pub async fn end(&mut self) -> Result<(), String> {
        self.send(0).await?;
        let me = self.me;
        try_join_all(
            self.consumers.iter().map(|consumer| async move { answer(consumer, consumer.end_of_input(me).await) }),
        )
        .await
        .map(drop)
    }
}

/// A consumer's answer as this task's error.
fn answer(consumer: &TaskInputGateway, answer: Result<Result<(), String>, weir_guest::RpcError>) -> Result<(), String> {
    match answer {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(format!("consumer {} refused input: {why}", consumer.address())),
        Err(error) => Err(format!("consumer {} is unreachable: {error}", consumer.address())),
    }
}
