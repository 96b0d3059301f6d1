package import NIOCore

/// Runs Swift tasks on a connection's event loop.
///
/// A task that prefers this executor (`withTaskExecutorPreference`) writes commands and resumes on replies on
/// the loop's own thread, so a round trip costs no thread switch. Only for code that never blocks: it shares
/// the loop with the connection's I/O.
package final class EventLoopTaskExecutor: TaskExecutor {
    package let eventLoop: any EventLoop

    package init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
