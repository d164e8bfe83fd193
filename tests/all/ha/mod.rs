//! High availability: leader election and retrieval in memory, from fixed
//! addresses, and through a real ZooKeeper with real `weir` processes.

mod local;
mod split_brain;
mod zookeeper;
