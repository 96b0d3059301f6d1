package import Foundation
import Synchronization

/// The jobs one daemon runs (table sync pipelines, the Redis sync, the HA agent, schedules) and how each is doing.
/// The daemon marks a job failed when it stops with an error; `/health/ready` and `ferry_job_up` read it here.
package final class JobRegistry: Sendable {
    package struct Job: Sendable, Equatable {
        package enum State: String, Sendable {
            /// `stalled`: running, with work waiting, but no progress for a while (``StallWatch``).
            case starting, running, stalled, failed, stopped
        }

        /// Unique in the daemon: `pipeline:ventas`, `redis_sync`, `cluster_agent:node1`.
        package var name: String
        package var state: State
        /// Why it failed, as the job's error describes it (no secrets: Ferry's errors never carry them).
        package var error: String?
        package var since: Date
    }

    private let jobs = Mutex<[Job]>([])

    package init() {}

    /// Adds `name` in state `starting` (a name registered again keeps its place).
    package func register(_ name: String) {
        update(name, .starting)
    }

    package func update(_ name: String, _ state: Job.State, error: String? = nil) {
        jobs.withLock { jobs in
            let job = Job(name: name, state: state, error: error, since: Date())
            if let index = jobs.firstIndex(where: { $0.name == name }) { jobs[index] = job } else { jobs.append(job) }
        }
    }

    /// Marks a running job stalled with `message`, or running again when `message` is nil; a job that failed or
    /// stopped stays so.
    package func reportStall(_ name: String, _ message: String?) {
        jobs.withLock { jobs in
            guard let index = jobs.firstIndex(where: { $0.name == name }), [.running, .stalled].contains(jobs[index].state) else { return }
            let state: Job.State = message == nil ? .running : .stalled
            guard jobs[index].state != state || jobs[index].error != message else { return }
            jobs[index] = Job(name: name, state: state, error: message, since: state == jobs[index].state ? jobs[index].since : Date())
        }
    }

    /// Every job, in the order registered.
    package var snapshot: [Job] { jobs.withLock { $0 } }

    package var failed: [Job] { snapshot.filter { $0.state == .failed } }
}
