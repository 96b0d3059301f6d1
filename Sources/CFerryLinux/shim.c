// The declarations are inline, in include/CFerryLinux.h.
