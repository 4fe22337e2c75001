/*
 * fs_dirs.h - making a folder and its parents (mkdir -p).
 *
 * Threads: any thread; no state.
 */
#ifndef SEM_FS_DIRS_H
#define SEM_FS_DIRS_H

/* Creates dir and every missing parent (mode 0755); a folder that exists
 * is fine. 0, or -1 with errno (ENAMETOOLONG past PATH_MAX). */
int fs_make_dirs(const char *dir);

#endif
