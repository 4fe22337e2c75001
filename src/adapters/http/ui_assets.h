/*
 * ui_assets.h - the inspector page's files, compiled into the binary.
 *
 * The sources are src/adapters/http/ui/inspector.{html,css,js}; the build
 * turns each into a byte array (cmake/embed_files.cmake) in ui_assets.c in
 * the build folder. Each array ends with a NUL that its length leaves out.
 *
 * Threads: constant data. Ownership: static.
 */
#ifndef SEM_HTTP_UI_ASSETS_H
#define SEM_HTTP_UI_ASSETS_H

#include <stddef.h>

extern const unsigned char ui_inspector_html[];
extern const size_t ui_inspector_html_len;
extern const unsigned char ui_inspector_css[];
extern const size_t ui_inspector_css_len;
extern const unsigned char ui_inspector_js[];
extern const size_t ui_inspector_js_len;

#endif
