/*
 * responses_output.c - output items and their stream events.
 */
#include "responses_output.h"

#include <string.h>

#include "http_generation.h"
#include "sse.h"

sem_status rs_output_init(rs_output *o, http_api *api)
{
    *o = (rs_output){.api = api, .items = json_array()};
    return o->items ? SEM_OK : SEM_ENOMEM;
}

void rs_output_free(rs_output *o)
{
    json_decref(o->items);
    strbuf_free(&o->text);
    memset(o, 0, sizeof *o);
}

void rs_output_emit(rs_output *o, const char *type, json_t *fields)
{
    if (!o->out) {
        json_decref(fields);
        return;
    }
    json_object_set_new(fields, "type", json_string(type));
    json_object_set_new(fields, "sequence_number", json_integer((json_int_t)o->seq++));
    sse_json(o->out, type, fields);
    json_decref(fields);
}

/* The open item, its index and id. */
static json_t *open_item(const rs_output *o)
{
    return json_array_get(o->items, json_array_size(o->items) - 1);
}

static json_int_t open_index(const rs_output *o)
{
    return (json_int_t)json_array_size(o->items) - 1;
}

static const char *open_id(const rs_output *o)
{
    return json_string_value(json_object_get(open_item(o), "id"));
}

/* A content part of the open message or reasoning item. */
static json_t *part(const rs_output *o, const char *text, size_t len)
{
    if (o->open == RS_ITEM_REASONING)
        return json_pack("{s:s,s:o}", "type", "reasoning_text", "text", http_gen_text(text, len));
    return json_pack("{s:s,s:o,s:[],s:[]}", "type", "output_text", "text", http_gen_text(text, len),
                     "annotations", "logprobs");
}

static void begin_item(rs_output *o, rs_item_kind kind, const chat_call *call)
{
    char id[64];
    json_t *item;
    strbuf_truncate(&o->text, 0);
    o->open = kind;
    switch (kind) {
    case RS_ITEM_MESSAGE:
        http_api_new_id(o->api, "msg_", id, sizeof id);
        item = json_pack("{s:s,s:s,s:s,s:s,s:[]}", "id", id, "type", "message", "status",
                         "in_progress", "role", "assistant", "content");
        break;
    case RS_ITEM_REASONING:
        http_api_new_id(o->api, "rs_", id, sizeof id);
        item = json_pack("{s:s,s:s,s:[],s:[]}", "id", id, "type", "reasoning", "summary",
                         "content");
        break;
    default:
        http_api_new_id(o->api, "fc_", id, sizeof id);
        item = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", id, "type", "function_call", "status",
                         "in_progress", "call_id", call->id, "name", call->name ? call->name : "",
                         "arguments", "");
        break;
    }
    json_array_append_new(o->items, item);
    rs_output_emit(o, "response.output_item.added",
                   json_pack("{s:I,s:O}", "output_index", open_index(o), "item", item));
    if (kind != RS_ITEM_CALL)
        rs_output_emit(o, "response.content_part.added",
                       json_pack("{s:s,s:I,s:i,s:o}", "item_id", open_id(o), "output_index",
                                 open_index(o), "content_index", 0, "part", part(o, "", 0)));
}

static void close_text(rs_output *o)
{
    json_t *item = open_item(o);
    int reasoning = o->open == RS_ITEM_REASONING;
    json_t *done = json_pack("{s:s,s:I,s:i,s:o}", "item_id", open_id(o), "output_index",
                             open_index(o), "content_index", 0, "text",
                             http_gen_text(o->text.data, o->text.len));
    if (!reasoning)
        json_object_set_new(done, "logprobs", json_array());
    rs_output_emit(o, reasoning ? "response.reasoning_text.done" : "response.output_text.done",
                   done);
    json_t *p = part(o, o->text.data, o->text.len);
    rs_output_emit(o, "response.content_part.done",
                   json_pack("{s:s,s:I,s:i,s:O}", "item_id", open_id(o), "output_index",
                             open_index(o), "content_index", 0, "part", p));
    json_object_set_new(item, "content", json_pack("[o]", p));
    if (!reasoning)
        json_object_set_new(item, "status", json_string("completed"));
}

static void end_item(rs_output *o)
{
    if (o->open == RS_ITEM_NONE)
        return;
    json_t *item = open_item(o);
    if (o->open == RS_ITEM_CALL) {
        json_object_set_new(item, "arguments", http_gen_text(o->text.data, o->text.len));
        json_object_set_new(item, "status", json_string("completed"));
        rs_output_emit(o, "response.function_call_arguments.done",
                       json_pack("{s:s,s:I,s:O,s:O}", "item_id", open_id(o), "output_index",
                                 open_index(o), "name", json_object_get(item, "name"),
                                 "arguments", json_object_get(item, "arguments")));
    } else {
        close_text(o);
    }
    rs_output_emit(o, "response.output_item.done",
                   json_pack("{s:I,s:O}", "output_index", open_index(o), "item", item));
    o->open = RS_ITEM_NONE;
}

void rs_output_on_event(void *user, const chat_event *ev, const chat_call *call)
{
    rs_output *o = user;
    rs_item_kind want = ev->type == CHAT_EV_TEXT        ? RS_ITEM_MESSAGE
                        : ev->type == CHAT_EV_REASONING ? RS_ITEM_REASONING
                                                        : RS_ITEM_CALL;
    if (ev->type == CHAT_EV_TOOL_START) {
        end_item(o);
        begin_item(o, RS_ITEM_CALL, call);
        o->call_index = ev->tool_index;
        return;
    }
    if (want == RS_ITEM_CALL && (o->open != RS_ITEM_CALL || o->call_index != ev->tool_index))
        return; /* arguments of a call that was never opened (beyond the answer's limit) */
    if (want != RS_ITEM_CALL && o->open != want) {
        end_item(o);
        begin_item(o, want, NULL);
    }
    strbuf_append(&o->text, ev->text, ev->len);
    const char *type = want == RS_ITEM_MESSAGE     ? "response.output_text.delta"
                       : want == RS_ITEM_REASONING ? "response.reasoning_text.delta"
                                                   : "response.function_call_arguments.delta";
    json_t *f = json_pack("{s:s,s:I,s:o}", "item_id", open_id(o), "output_index", open_index(o),
                          "delta", http_gen_text(ev->text, ev->len));
    if (want != RS_ITEM_CALL)
        json_object_set_new(f, "content_index", json_integer(0));
    if (want == RS_ITEM_MESSAGE)
        json_object_set_new(f, "logprobs", json_array());
    rs_output_emit(o, type, f);
}

void rs_output_finish(rs_output *o)
{
    end_item(o);
    size_t i;
    const json_t *it;
    json_array_foreach(o->items, i, it)
    {
        if (strcmp(json_string_value(json_object_get(it, "type")), "reasoning") != 0)
            return;
    }
    begin_item(o, RS_ITEM_MESSAGE, NULL); /* nothing but reasoning: an empty message */
    end_item(o);
}
