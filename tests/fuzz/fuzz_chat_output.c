/*
 * fuzz_chat_output.c - libFuzzer target: any generated text through the
 * chat output parser, under every syntax. The first byte picks the
 * format, whether tools are on, whether the answer starts in thinking and
 * where to cut; the rest is the text. Fed whole and fed in pieces, the
 * parser must report the same content, reasoning and calls, and with
 * tools off it reports no call.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "adapters/chat/chat_output.h"
#include "base/strbuf.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The events, serialised: a header per call start and per change of
 * type or call ("\n" type letter, index, id), then the texts, so events
 * that pieces split read the same as whole ones. */
typedef struct events {
    strbuf out;
    int type;
    uint32_t index;
} events;

static void record(void *user, const chat_event *ev)
{
    events *a = user;
    if (ev->type == CHAT_EV_TOOL_START || (int)ev->type != a->type || ev->tool_index != a->index)
        strbuf_printf(&a->out, "\n%c%u%s%s:", "TRSA"[ev->type], ev->tool_index,
                      ev->id ? "#" : "", ev->id ? ev->id : "");
    strbuf_append(&a->out, ev->text, ev->len);
    a->type = (int)ev->type;
    a->index = ev->tool_index;
}

static void run(const prompt_syntax *syn, int tools, int thinking, const char *text, size_t n,
                size_t piece, events *ev, uint32_t *calls)
{
    chat_output *o = chat_output_new(syn, tools, thinking);
    ev->type = -1;
    if (!o)
        return;
    for (size_t at = 0; at < n; at += piece)
        chat_output_feed(o, text + at, n - at < piece ? n - at : piece, record, ev);
    chat_output_finish(o, record, ev);
    *calls = chat_output_n_calls(o);
    chat_output_free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const prompt_tool_format formats[] = {PROMPT_TOOLS_GENERIC, PROMPT_TOOLS_HERMES,
                                                 PROMPT_TOOLS_LLAMA3, PROMPT_TOOLS_MISTRAL};
    uint8_t sel = data[0];
    prompt_syntax syn = {.tools = formats[sel & 3], .parallel_calls = 1};
    if (sel & 4) {
        syn.think_open = "<think>";
        syn.think_close = "</think>";
    }
    int tools = (sel >> 3) & 1, thinking = (sel & 4) && ((sel >> 4) & 1);
    size_t piece = 1 + (sel >> 5);
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    events ew = {0}, ep = {0};
    uint32_t calls_whole = 0, calls_pieces = 0;
    run(&syn, tools, thinking, text, n, n ? n : 1, &ew, &calls_whole);
    run(&syn, tools, thinking, text, n, piece, &ep, &calls_pieces);
    strbuf whole = ew.out, pieces = ep.out;
    if (!whole.oom && !pieces.oom) {
        FUZZ_CHECK(calls_whole == calls_pieces, "calls %u whole, %u in pieces of %zu",
                   calls_whole, calls_pieces, piece);
        FUZZ_CHECK(whole.len == pieces.len &&
                       (whole.len == 0 || memcmp(whole.data, pieces.data, whole.len) == 0),
                   "whole:%.*s\npieces of %zu:%.*s", (int)whole.len, whole.data, piece,
                   (int)pieces.len, pieces.data);
    }
    FUZZ_CHECK(tools || calls_whole == 0, "no calls with tools off");
    strbuf_free(&whole);
    strbuf_free(&pieces);
    return 0;
}
