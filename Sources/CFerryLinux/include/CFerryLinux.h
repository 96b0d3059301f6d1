// Linux system calls Swift's Glibc module does not bring in. See Sources/FerryRedis/Connection/IdleTickHint.swift.
#ifndef CFERRY_LINUX_H
#define CFERRY_LINUX_H

#ifdef __linux__
#include <sys/epoll.h>
#include <unistd.h>

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
