/*
 * cli.h - shared pieces of the subcommands: exit codes, error reporting,
 * number parsing.
 *
 * Exit codes (documented in docs/cli.md):
 *   0 success, 1 runtime failure, 2 usage or invalid argument,
 *   3 not found, 4 corrupt or incompatible file, 5 unsupported,
 *   6 input too large (context), 7 I/O error, 8 out of memory.
 */
#ifndef SEM_CLI_H
#define SEM_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"
#include "base/deadline.h"

int cli_exit_code(sem_status st);

/* Prints "semantic CMD: detail" to stderr and returns the exit code. */
int cli_fail(const char *cmd, const sem_err *err);

/*
 * Usage errors. The reason comes first, on one line, then one line that
 * points to the command's help; the full usage is printed by --help only:
 *
 *   semantic CMD: <reason>
 *   Run 'semantic CMD --help' for the usage.
 *
 * Both return 2 (the exit code of a usage error). cli_usage_fail takes the
 * reason from err (a bad option value from the parsers below).
 */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage_fail(const char *cmd, const sem_err *err);

/*
 * The usage error for what getopt_long() returned as `ch` ('?': an unknown
 * option, ':': an option without its value) while parsing argv: names the
 * option as it was typed. The caller sets opterr = 0 and starts its option
 * string with ':' so that getopt itself prints nothing.
 */
int cli_option_error(const char *cmd, int ch, int argc, char *const *argv);

/*
 * SEM_EINVAL unless a context of ctx tokens (per sequence) fits the
 * n_ctx_train tokens the model at `path` was trained for; the message
 * names both numbers and the file. A longer context is refused rather
 * than clamped: positions past the trained length give garbage, and a
 * silent clamp would hide that the option did not do what was asked.
 * session_open and serving_stack_open check it, so every command does.
 */
sem_status cli_check_ctx(uint32_t ctx, uint32_t n_ctx_train, const char *path, sem_err *err);

/* Strict parsers: the whole string must be a number in [min, max]. */
sem_status cli_parse_u32(const char *opt, const char *s, uint32_t min, uint32_t max,
                         uint32_t *out, sem_err *err);
sem_status cli_parse_u64(const char *opt, const char *s, uint64_t *out, sem_err *err);
sem_status cli_parse_f32(const char *opt, const char *s, float min, float max, float *out,
                         sem_err *err);

/* Reads a whole file into a NUL-terminated malloc'd buffer. */
sem_status cli_read_file(const char *path, char **out, size_t *len, sem_err *err);

/* Subcommands. */
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_agents(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_session(int argc, char **argv);

#endif
