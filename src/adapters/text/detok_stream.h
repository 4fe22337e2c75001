/*
 * detok_stream.h - detokenization one token at a time, for streaming the
 * text of a generation.
 *
 * Feed the ids as they are generated; each call hands back only text that
 * is final and ends on a complete UTF-8 sequence:
 *   - a multi-byte character split across tokens (byte tokens of an emoji)
 *     is held back until its last byte arrives;
 *   - bytes that cannot become valid UTF-8 are replaced by U+FFFD, one per
 *     maximal ill-formed subpart (Unicode's recommended practice);
 *   - the vocabulary's decode rules apply across token boundaries: the
 *     leading space the SPM encoder adds is dropped from the first token
 *     (unless a removed BOS came first), a trailing EOS is dropped when
 *     remove_special is set and the vocabulary adds EOS, and for BPE
 *     schemes with clean_spaces the " ." / " 's" rules are applied, holding
 *     back the few bytes whose cleaning depends on text not yet seen.
 * detok_stream_finish flushes what was held back (an incomplete UTF-8 tail
 * becomes U+FFFD).
 *
 * Contract: the concatenation of every text returned by feed and finish
 * equals tokenizer_decode(all ids, remove_special, unparse_special) whenever
 * that is valid UTF-8; otherwise it is that text with each ill-formed
 * subpart replaced by U+FFFD. So the stream is always valid UTF-8.
 *
 * To stream a continuation (text that follows a prompt) without the first
 * token losing its leading space, use detok_stream_new_continuation.
 *
 * Ownership and threads: a stream belongs to one thread at a time; many
 * streams may share one tokenizer. The text pointer returned by feed and
 * finish points into the stream and stays valid until its next call.
 */
#ifndef SEM_DETOK_STREAM_H
#define SEM_DETOK_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"
#include "domain/status.h"

typedef struct detok_stream detok_stream;

/* A stream with tokenizer_decode's rules for a whole sequence. */
detok_stream *detok_stream_new(const tokenizer *tk, int remove_special, int unparse_special,
                               sem_err *err);
/* A stream for tokens that continue earlier text: no first-token space
 * removal and no BOS removal (what concatenating pieces gives). */
detok_stream *detok_stream_new_continuation(const tokenizer *tk, int remove_special,
                                            int unparse_special, sem_err *err);
void detok_stream_free(detok_stream *s);

/* Starts over (same settings), dropping anything held back. */
void detok_stream_reset(detok_stream *s);

/* Feeds one id. *text and *len receive the newly final text (possibly empty).
 * An invalid id gives SEM_EINVAL naming it and changes nothing. */
sem_status detok_stream_feed(detok_stream *s, int32_t id, const char **text, size_t *len,
                             sem_err *err);

/* Ends the sequence: returns what was held back. The stream is then reset. */
sem_status detok_stream_finish(detok_stream *s, const char **text, size_t *len, sem_err *err);

/* Bytes received but not yet returned (held back). */
size_t detok_stream_pending(const detok_stream *s);

#endif
