/*
 * main.c - the semantic command line: dispatches to the subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: semantic <command> [options]\n"
            "\n"
            "commands:\n"
            "  run         complete a prompt with a model\n"
            "  perplexity  perplexity of a text file\n"
            "  tokenize    print the token ids of a text\n"
            "  info        describe a GGUF file\n"
            "  bench       prompt-processing and generation speed\n"
            "  mkmodel     write a random-weight model of a real shape\n"
            "  agents      list, show or remove the agents kept on disk\n"
            "  serve       the OpenAI- and Anthropic-compatible HTTP server\n"
            "  session     run a multi-agent scenario against a server\n"
            "  version     print the version\n"
            "  help        show this help\n"
            "\n"
            "Run `semantic COMMAND --help` for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(NULL, "a command is required: run, serve, session, agents, "
                                     "tokenize, info, perplexity, bench or mkmodel");
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("semantic %s\n", SEM_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"run", cmd_run},
                {"perplexity", cmd_perplexity},
                {"tokenize", cmd_tokenize},
                {"info", cmd_info},
                {"bench", cmd_bench},
                {"mkmodel", cmd_mkmodel},
                {"agents", cmd_agents},
                {"serve", cmd_serve},
                {"session", cmd_session}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
}
