/*
 * cmd_tokenize.c - `semantic tokenize -m MODEL [--special] [--no-bos] [--json] TEXT`.
 *
 * Loads only the vocabulary, so vocabulary-only GGUF files work.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/gguf/gguf.h"
#include "adapters/text/tokenizer.h"
#include "cli.h"

static void usage(void)
{
    printf("usage: semantic tokenize -m MODEL [--special] [--no-bos] [--json] TEXT\n"
            "  --special   parse special-token text such as <|eot_id|>\n"
            "  --no-bos    do not add BOS/EOS even if the vocabulary asks for it\n"
            "  --json      print {\"tokens\":[...]}\n");
}

int cmd_tokenize(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"special", no_argument, 0, 's'},
                                         {"no-bos", no_argument, 0, 'b'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *path = NULL;
    int special = 0, add_special = 1, json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': path = optarg; break;
        case 's': special = 1; break;
        case 'b': add_special = 0; break;
        case 'j': json = 1; break;
        case 'h': usage(); return 0;
        default: return cli_option_error("tokenize", c, argc, argv);
        }
    }
    if (!path)
        return cli_usage_error("tokenize", "-m MODEL is required");
    if (optind == argc)
        return cli_usage_error("tokenize", "the TEXT to tokenize is missing");
    if (optind < argc - 1)
        return cli_usage_error("tokenize", "one TEXT only: quote it ('%s' is a second one)",
                               argv[optind + 1]);
    const char *text = argv[optind];
    sem_err err = {0};
    gguf_file *f = gguf_open(path, &err);
    if (!f)
        return cli_fail("tokenize", &err);
    tokenizer *tk = tokenizer_load(f, &err);
    gguf_close(f);
    if (!tk)
        return cli_fail("tokenize", &err);
    int32_t *ids = NULL;
    size_t n = 0;
    if (tokenizer_encode(tk, text, strlen(text), add_special, special, &ids, &n, &err) != SEM_OK) {
        tokenizer_free(tk);
        return cli_fail("tokenize", &err);
    }
    if (json) {
        printf("{\"tokens\":[");
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? "," : "", ids[i]);
        printf("]}\n");
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
    }
    free(ids);
    tokenizer_free(tk);
    return 0;
}
