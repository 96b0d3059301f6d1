#if os(Linux)
    import CFerryLinux
    import Glibc
    import NIOPosix

    /// Asks Linux to keep this CPU's timer tick running while a connection waits for its reply.
    ///
    /// A CPU that goes idle with nothing pending stops its periodic tick, and restarts it when woken. Inside a
    /// virtual machine both steps reprogram the local timer, which costs exits to the hypervisor: measured on
    /// Ferry's 2-vCPU Firecracker test machine, 10–20 µs added to every round trip whose reply arrives after
    /// the CPU has gone idle. A CPU with RCU callbacks pending keeps its tick (`tick_nohz_next_event` checks
    /// `rcu_needs_cpu`), and removing an epoll registration frees it through RCU. So after a write, removing and
    /// re-adding a registration in a private epoll set — four system calls, about 2 µs — leaves the tick running
    /// for the wait.
    ///
    /// `redis-benchmark` (and every client on Redis's `ae` loop) does this without meaning to: it deletes and
    /// re-adds its socket in epoll on every request. A plain loop of `write`, `epoll_wait`, `read` in C measures
    /// 1.2–1.3× redis-benchmark's round trip on that machine; with the same two cycles as here, 0.95–1.0×.
    /// See docs/BENCHMARKS.md, "Redis client", "2026-12-04: the idle tick".
    ///
    /// One per event-loop thread: the hint has to be given on the CPU that is about to wait.
    final class IdleTickHint: Sendable {
        private static let perThread = ThreadSpecificVariable<IdleTickHint>()
        /// Registration cycles per hint: one measured about half the gain of two; three were no better than two.
        private static let cycles: CInt = 2

        private let set: CInt
        private let target: CInt

        /// The calling thread's hint; `nil` when its descriptors could not be made (the hint is then skipped).
        static var current: IdleTickHint? {
            let hint: IdleTickHint
            if let existing = perThread.currentValue {
                hint = existing
            } else {
                hint = IdleTickHint()
                perThread.currentValue = hint
            }
            return hint.set >= 0 ? hint : nil
        }

        private init() {
            var set: CInt = -1
            var target: CInt = -1
            if cferry_idle_tick_hint_open(&set, &target) != 0 {
                set = -1
                target = -1
            }
            self.set = set
            self.target = target
        }

        deinit {
            if set >= 0 {
                close(set)
                close(target)
            }
        }

        /// Call right after the write, on the thread that will wait for the reply.
        func give() {
            cferry_idle_tick_hint_give(set, target, Self.cycles)
        }
    }
#endif
