//! Per-thread nice levels, as the original applied `consumer_nice_level` and
//! `compression_nice_level` to its processes. On Linux a thread id is a valid target of
//! setpriority(PRIO_PROCESS), which changes that thread only.

pub fn set_current_thread(level: i32) {
    if level == 0 {
        return;
    }
    let tid = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(tid), level) {
        // Lowering the nice value needs CAP_SYS_NICE; running at the default is not fatal.
        tracing::warn!(level, %error, "could not set the thread's nice level");
    }
}
