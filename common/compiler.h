/* compiler.h - attributes shared by every module. */
#ifndef CDR_COMPILER_H
#define CDR_COMPILER_H

#define CDR_MUST_CHECK        __attribute__((warn_unused_result))
#define CDR_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define CDR_ARRAY_LEN(a)      (sizeof(a) / sizeof((a)[0]))

#endif
