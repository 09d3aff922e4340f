/* SPDX-License-Identifier: Apache-2.0 */
/* The server's durable state: one SQLite file (DIR/gpufuse.db, WAL, synchronous=FULL) holding
 * pools, nodes, GPUs, workloads, allocations, profiles and hashed tokens. A write that
 * gf_store_commit acknowledged survives SIGKILL and power loss. Not thread-safe by itself:
 * the server serializes every call under its lock. */
#ifndef GF_SERVER_STORE_H
#define GF_SERVER_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gpufuse/status.h"

typedef struct gf_store gf_store;

#define GF_STORE_FILE "gpufuse.db"
#define GF_STORE_SCHEMA_VERSION 2 /* 2: workload leases and worker tokens */

/* Opens (creating) DIR/gpufuse.db, applies the schema, creates pool "default". *out is owned
 * by the caller (gf_store_close). err names the path and SQLite's message on failure. */
gf_status gf_store_open(const char *dir, gf_store **out, char *err, size_t errlen);
void gf_store_close(gf_store *s);

/* Transactions: begin (immediate), commit (durable once it returns GF_OK), rollback. */
gf_status gf_store_begin(gf_store *s);
gf_status gf_store_commit(gf_store *s);
void gf_store_rollback(gf_store *s);

/* Runs one statement. sql must be a string literal (statements are cached by its address).
 * types says how to bind the variadic arguments, one letter each: 't' const char * (NULL binds
 * NULL), 'i' int64_t, 'd' double. Returns GF_OK, GF_EEXIST for a constraint violation, or
 * GF_EIO (logged with SQLite's message). *changes (may be NULL) = rows changed. */
gf_status gf_store_exec(gf_store *s, const char *sql, int *changes, const char *types, ...);

/* Runs a query and returns its rows as a JSON array of objects (new reference; NULL on error):
 * each column becomes a key with its SQLite type (INTEGER, REAL, TEXT, NULL); a column whose
 * name ends in "_json" holds JSON text, parsed and stored under the name without the suffix;
 * a column named like "remote_bool" becomes a boolean "remote". */
json_t *gf_store_query(gf_store *s, const char *sql, const char *types, ...);

/* The first column of the first row as an integer (*out = dflt when there is no row). */
gf_status gf_store_query_int(gf_store *s, const char *sql, int64_t dflt, int64_t *out,
                             const char *types, ...);

/* A counter bumped by every gf_store_exec (every write): answers computed from the store at
 * one generation stay valid until it changes (the server's list cache relies on it). */
uint64_t gf_store_generation(const gf_store *s);

/* The last SQLite error message (for logs). */
const char *gf_store_errmsg(gf_store *s);

#endif
