//! The job's shape, from the JobMaster's settings: its stages in order
//! (`stages`, one `name parallelism` per line; without it one stage `task`
//! of `slots` subtasks, default 1), the files its first stage reads
//! (`inputs`, one per line) and the arguments its tasks get (`arguments`,
//! one per line). Slots are shared as in Flink: subtask `i` of every stage
//! runs in slot `i`, so the job needs as many slots as its widest stage.

use std::rc::Rc;

/// One stage of the job.
pub struct Stage {
    pub name: String,
    pub parallelism: u32,
}

thread_local! {
    static STAGES: Rc<[Stage]> = stages_setting().unwrap_or_else(|_| Rc::from([]));
}

/// The setting `name`'s non-empty lines.
pub fn lines(name: &str) -> Vec<String> {
    weir_guest::config(name)
        .map(|all| all.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn stages_setting() -> Result<Rc<[Stage]>, String> {
    if weir_guest::config("stages").is_none() {
        let slots = weir_guest::config("slots").unwrap_or_else(|| "1".to_owned());
        let parallelism = slots.parse().map_err(|_| format!("the `slots` setting `{slots}` is not a number"))?;
        return Ok(Rc::from([Stage { name: "task".into(), parallelism }]));
    }
    let stages = lines("stages")
        .into_iter()
        .map(|line| {
            let (name, parallelism) =
                line.rsplit_once(' ').ok_or_else(|| format!("stage `{line}` has no parallelism"))?;
            let parallelism = parallelism.parse().ok().filter(|p| *p > 0);
            let parallelism = parallelism.ok_or_else(|| format!("stage `{line}` needs a parallelism of at least 1"))?;
            Ok(Stage { name: name.trim().to_owned(), parallelism })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if stages.is_empty() {
        return Err("the `stages` setting names no stage".into());
    }
    Ok(stages.into())
}

/// Checks the settings, for `on-start`.
pub fn check() -> Result<(), String> {
    stages_setting().map(drop)
}

/// The job's stages, in order.
pub fn stages() -> Rc<[Stage]> {
    STAGES.with(Rc::clone)
}

/// The slots the job needs: its widest stage's parallelism.
pub fn slots() -> u32 {
    stages().iter().map(|stage| stage.parallelism).max().unwrap_or(1)
}
