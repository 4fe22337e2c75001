/*
 * ui_routes.c - the inspector page (docs/inspector.md).
 *
 *   GET /ui                     the page (HTML)
 *   GET /ui/inspector.css       its style sheet
 *   GET /ui/inspector.js        its script
 *
 * The three files are compiled into the binary (ui_assets.h), so the page
 * works offline and loads nothing from another host. They hold no data:
 * they are served without a key, and the script sends the key the user
 * enters with every data call (/v1/stats, /v1/agents...). Every answer
 * carries a Content-Security-Policy that allows only this origin, and no
 * inline script or style, so the page cannot be made to run or load
 * anything else.
 *
 * Threads: an event-loop worker; constant data only.
 */
#include <string.h>

#include "routes.h"
#include "ui_assets.h"

#define UI_CSP                                                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "                    \
    "form-action 'none'; frame-ancestors 'none'"

typedef struct ui_asset {
    const char *name; /* the {id} of /ui/{id}; "" for /ui itself */
    const char *content_type;
    const unsigned char *bytes;
    const size_t *len;
} ui_asset;

static const ui_asset assets[] = {
    {"", "text/html; charset=utf-8", ui_inspector_html, &ui_inspector_html_len},
    {"inspector.css", "text/css; charset=utf-8", ui_inspector_css, &ui_inspector_css_len},
    {"inspector.js", "text/javascript; charset=utf-8", ui_inspector_js, &ui_inspector_js_len},
};

static void reply_asset(http_exchange *x, const ui_asset *a)
{
    http_exchange_add_header(x, "Content-Security-Policy", UI_CSP);
    http_exchange_add_header(x, "X-Content-Type-Options", "nosniff");
    http_exchange_add_header(x, "Referrer-Policy", "no-referrer");
    /* The page changes with the binary: a browser asks again each time. */
    http_exchange_add_header(x, "Cache-Control", "no-cache");
    http_exchange_reply_text(x, 200, a->content_type, (const char *)a->bytes, *a->len);
}

void ui_routes_page(http_api *api, http_exchange *x) { reply_asset(x, &assets[0]); }

void ui_routes_asset(http_api *api, http_exchange *x)
{
    const char *name = http_exchange_param(x);
    for (size_t i = 1; i < sizeof assets / sizeof assets[0]; i++)
        if (strcmp(assets[i].name, name) == 0) {
            reply_asset(x, &assets[i]);
            return;
        }
    http_error e = http_error_make(HTTP_ERR_NOT_FOUND, NULL,
                                   "no inspector file '%.100s' (the page is at /ui)", name);
    http_exchange_reply_error(x, &e);
}
