/*
 * conf_file.h - the text files the command line reads options from: a
 * config file of `name = value` lines (`semantic serve --config FILE`) and
 * a list of one item per line (`--api-key-file FILE`).
 *
 *   # the server's options, as the long flags without "--"
 *   port = 8000
 *   api-key = first
 *   api-key = second
 *   cache-dir = ""
 *
 * Lexical rules, the same for both kinds:
 *   - lines end at '\n'; a '\r' before it is dropped (CRLF files read alike);
 *   - blank space (spaces, tabs) around a line, a name and a value is not
 *     part of them;
 *   - a line that is empty, or whose first character after blank space is
 *     '#', is skipped. Only whole lines are comments: a '#' after a value
 *     belongs to the value (API keys and paths may hold one);
 *   - a NUL byte anywhere is an error (not a text file), and so is a file
 *     larger than CONF_FILE_MAX_BYTES.
 * In an options file each other line is `name = value`: the name is a
 * letter, then letters, digits and '-'; the value is the rest of the line
 * after the first '=' and may be empty; a value written in double quotes
 * ("...") is what is between them, taken literally (so `""` is an empty
 * value and `" x "` keeps its spaces). In a list file each other line is
 * one item, quotes included.
 *
 * This module knows no option names: it reports what the file says, each
 * entry with its line number, in file order, and the caller judges names
 * and values (naming the file and line through conf_file_where).
 *
 * Errors name the file and line ("FILE:LINE: ...") and never quote a
 * line's text, which may hold a secret.
 *
 * Ownership: a conf_file owns every string its entries point to; they live
 * until conf_file_free. Threads: a conf_file is immutable after load and may
 * be read from any thread; nothing here keeps global state.
 */
#ifndef SEM_CLI_CONF_FILE_H
#define SEM_CLI_CONF_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "domain/status.h"

/* Largest file read, in bytes: a config or key file is a few KiB. */
#define CONF_FILE_MAX_BYTES (1u << 20)

typedef enum conf_file_kind {
    CONF_FILE_OPTIONS, /* `name = value` lines */
    CONF_FILE_LIST     /* one item per line (name NULL) */
} conf_file_kind;

typedef struct conf_entry {
    const char *name;  /* an option name; NULL in a list */
    const char *value; /* may be "" in an options file; never "" in a list */
    uint32_t line;     /* 1-based line number in the file */
} conf_entry;

typedef struct conf_file conf_file;

/*
 * Reads and parses the file at path. SEM_ENOTFOUND when it does not exist,
 * SEM_EIO when it cannot be opened or read (permissions, a folder),
 * SEM_ETOOLARGE beyond CONF_FILE_MAX_BYTES, SEM_EINVAL for a line that
 * breaks the rules above, SEM_ENOMEM. On error *out is NULL.
 */
sem_status conf_file_load(const char *path, conf_file_kind kind, conf_file **out, sem_err *err);

/* The same over len bytes of text; label stands for the file's name in
 * errors and in conf_file_path. The text is copied. */
sem_status conf_file_parse(const char *label, const char *text, size_t len, conf_file_kind kind,
                           conf_file **out, sem_err *err);

size_t conf_file_count(const conf_file *f);

/* Entry i (< conf_file_count), valid until conf_file_free. */
const conf_entry *conf_file_entry(const conf_file *f, size_t i);

/* The path (or label) the file was read from. */
const char *conf_file_path(const conf_file *f);

/* Prefixes err's detail with "PATH:LINE: " for entry e of f: how a caller
 * that refuses an entry's name or value says where it is. Returns
 * err->status. */
sem_status conf_file_where(const conf_file *f, const conf_entry *e, sem_err *err);

void conf_file_free(conf_file *f);

#endif
