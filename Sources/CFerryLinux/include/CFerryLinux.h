// Linux system calls Swift's Glibc module does not bring in. See Sources/FerryRedis/Connection/IdleTickHint.swift.
#ifndef CFERRY_LINUX_H
#define CFERRY_LINUX_H

#ifdef __linux__
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

/// Starts writing `length` bytes at `offset` of `fd` back to disk without waiting for it (sync_file_range with
/// SYNC_FILE_RANGE_WRITE): a restore's writes reach the disk while it goes on. Returns 0, or -1 with errno. Through
/// syscall(2): glibc declares sync_file_range only under _GNU_SOURCE, which would make this module's system types
/// differ from the other modules' (fd_set).
static inline int cferry_start_writeback(int fd, long long offset, long long length) {
#ifdef SYS_sync_file_range
    return (int)syscall(SYS_sync_file_range, fd, offset, length, 2 /* SYNC_FILE_RANGE_WRITE */);
#else
    (void)fd; (void)offset; (void)length;
    return -1;
#endif
}

/// Makes a private epoll set holding one registration (another, empty epoll set). Returns 0, or -1 with errno.
static inline int cferry_idle_tick_hint_open(int *set, int *target) {
    int s = epoll_create1(EPOLL_CLOEXEC);
    if (s < 0) return -1;
    int t = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = { .events = EPOLLIN };
    if (t < 0 || epoll_ctl(s, EPOLL_CTL_ADD, t, &event) != 0) {
        close(s);
        if (t >= 0) close(t);
        return -1;
    }
    *set = s;
    *target = t;
    return 0;
}

/// Removes and re-adds the registration `cycles` times: each removal frees an epoll item through RCU.
static inline void cferry_idle_tick_hint_give(int set, int target, int cycles) {
    struct epoll_event event = { .events = EPOLLIN };
    for (int i = 0; i < cycles; i++) {
        epoll_ctl(set, EPOLL_CTL_DEL, target, &event);
        epoll_ctl(set, EPOLL_CTL_ADD, target, &event);
    }
}
#endif

#endif
