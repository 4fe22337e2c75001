/*
 * server_process.h - `semantic serve` as a child process for end-to-end
 * tests and benchmarks: started on a free port of 127.0.0.1 (--port 0;
 * the port is read from its "listening on" log line), waited for until
 * ready, stopped with a signal.
 *
 * The server's stderr (its JSON log) goes to a file the test can read.
 *
 * A server never outlives the process that started it, however that
 * process ends, and its temporary files (cache folder, log) go with it:
 *
 *   - the server runs in its own process group, with PR_SET_PDEATHSIG
 *     SIGKILL: the kernel kills it when the thread that started it dies
 *     (SIGKILL included);
 *   - an exit() or a return from main (a cmocka run with failures) runs an
 *     atexit handler that kills every server still running with its
 *     group, waits for it and removes its files;
 *   - SIGTERM, SIGINT and SIGABRT (abort(), a failed assert) run a handler
 *     that kills the groups, then die of the signal as before;
 *   - a small reaper process, forked at the first start, holds the read
 *     end of a pipe whose write end only the test process has. When the
 *     test process is gone for any reason (SIGKILL too), the pipe reads
 *     end-of-file and the reaper kills what is left and removes the files
 *     the test process could not. A normal stop tells the reaper the
 *     server is gone.
 *
 * Threads: one thread drives a server process, and the thread that starts
 * a server must outlive it (the parent-death signal follows that thread).
 */
#ifndef SEM_TEST_SERVER_PROCESS_H
#define SEM_TEST_SERVER_PROCESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct server_proc {
    pid_t pid;
    uint16_t port;
    char log_path[512];
    char cache_dir[512]; /* a fresh --cache-dir made for this server, removed at stop; "" if
                            the caller passed its own */
} server_proc;

/*
 * Starts bin serve -m model (model NULL: no -m) --host 127.0.0.1 --port 0 plus args (and a
 * fresh temporary --cache-dir unless args name one)
 * (NULL-terminated, may be NULL) with extra environment entries env
 * ("NAME=value", NULL-terminated, may be NULL), and waits up to 30 s for
 * /health/ready to answer 200 (ready 0: only for the port). Returns 0 or
 * -1 with the log printed to stderr.
 */
int server_start(server_proc *s, const char *bin, const char *model, const char *const *args,
                 const char *const *env, int wait_ready);

/* Sends sig and waits up to timeout_ms; returns the exit status (or
 * 128 + signal), -1 if it did not exit in time (it is then killed). */
int server_stop(server_proc *s, int sig, int timeout_ms);
/* The same, keeping the server's own cache directory (removed when the
 * process exits). */
int server_stop_keep(server_proc *s, int sig, int timeout_ms);

/* The server's log so far (malloc'd). */
char *server_log(const server_proc *s);

/* Deletes the log file (a test that passed has no use for it). */
void server_discard_log(server_proc *s);

/*
 * Any other program a test runs beside semantic (redis-server, nginx),
 * under the same guarantees: its own process group, killed with the
 * thread that started it and by the exit handlers and the reaper, stdout
 * and stderr to a fresh log file (s->log_path). argv[0] is a path; it
 * does not wait for anything (s->port stays 0). Stop it with server_stop
 * or server_stop_keep; 0 or -1.
 */
int server_spawn(server_proc *s, const char *const *argv);

/* Whether a spawned program has exited (it is then reaped: pid 0). */
int server_exited(server_proc *s);

/* A fresh temporary folder named after name, removed when the test
 * process ends however it ends, or by server_temp_dir_remove. 0 or -1. */
int server_temp_dir(const char *name, char *out, size_t cap);
void server_temp_dir_remove(const char *path);

/* A TCP port of 127.0.0.1 free at the moment of the call, or 0. */
uint16_t server_free_port(void);

#endif
