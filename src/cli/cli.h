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

#endif
