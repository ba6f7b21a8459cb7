/*
 * banned.h: functions that invite buffer overflows. Including this header
 * turns any use into a compile error; use snprintf / sbuf instead.
 */
#ifndef SITREP_BANNED_H
#define SITREP_BANNED_H

#define BANNED(func) sorry_##func##_is_banned

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef gets
#define gets(x) BANNED(gets)

#endif
