/*
 * responses_output.h - the output items of a Responses answer, built from
 * the chat parser's events (chat_answer.h), and, for a stream, the
 * Responses API's events as each item opens, grows and closes.
 *
 * Items, in the order the model wrote them:
 *   {"type":"reasoning","id":"rs_...","summary":[],
 *    "content":[{"type":"reasoning_text","text"}]}
 *   {"type":"message","id":"msg_...","status":"completed","role":"assistant",
 *    "content":[{"type":"output_text","text","annotations":[],"logprobs":[]}]}
 *   {"type":"function_call","id":"fc_...","status":"completed","call_id",
 *    "name","arguments"}
 * An answer with no item at all gets one empty message, so every turn of
 * a conversation has its assistant message.
 *
 * Stream events (each with "type" and "sequence_number", from `seq`):
 *   response.output_item.added, response.content_part.added,
 *   response.output_text.delta / response.reasoning_text.delta,
 *   response.function_call_arguments.delta, then at the item's close
 *   response.output_text.done / response.reasoning_text.done,
 *   response.content_part.done, response.function_call_arguments.done,
 *   response.output_item.done.
 *
 * Threads: belongs to one request's exchange (one thread at a time).
 */
#ifndef SEM_HTTP_RESPONSES_OUTPUT_H
#define SEM_HTTP_RESPONSES_OUTPUT_H

#include <jansson.h>

#include "base/strbuf.h"
#include "chat_answer.h"
#include "http_api.h"

typedef enum rs_item_kind {
    RS_ITEM_NONE,
    RS_ITEM_MESSAGE,
    RS_ITEM_REASONING,
    RS_ITEM_CALL
} rs_item_kind;

typedef struct rs_output {
    http_api *api;
    json_t *items;       /* the output items; the open one is last */
    rs_item_kind open;   /* the kind of the open item */
    uint32_t call_index; /* the open call's tool_index */
    strbuf text;         /* the open item's text, reasoning or arguments */
    strbuf *out;         /* where stream events go; NULL: build the items only */
    uint64_t seq;        /* the next event's sequence_number */
} rs_output;

/* SEM_ENOMEM. */
sem_status rs_output_init(rs_output *o, http_api *api);
/* A chat_answer event handler (chat_answer_event_fn); user is the rs_output. */
void rs_output_on_event(void *user, const chat_event *ev, const chat_call *call);
/* Closes the open item (and adds the empty message of an empty answer). */
void rs_output_finish(rs_output *o);
/* Appends one event `type` with `fields` (stolen) to o->out. */
void rs_output_emit(rs_output *o, const char *type, json_t *fields);
void rs_output_free(rs_output *o);

#endif
