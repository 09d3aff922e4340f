/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite persistence for the server: schema, durable transactions, cached prepared statements
 * and rows-to-JSON, so that every route is one SQL statement and a few lines of C. */
#include "server/store.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpufuse/log.h"

#define STMT_CACHE 128

struct gf_store {
    sqlite3 *db;
    struct {
        const char *sql; /* the literal's address is the key */
        sqlite3_stmt *stmt;
    } cache[STMT_CACHE];
    unsigned n_cache;
    uint64_t generation;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS pools("
    "  name TEXT PRIMARY KEY, strategy TEXT NOT NULL DEFAULT 'binpack',"
    "  oversub_tflops REAL NOT NULL DEFAULT 1.0, oversub_vram REAL NOT NULL DEFAULT 1.0,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS nodes("
    "  name TEXT PRIMARY KEY, pool TEXT NOT NULL, labels TEXT NOT NULL DEFAULT '{}',"
    "  address TEXT NOT NULL DEFAULT '', agent_version TEXT NOT NULL DEFAULT '',"
    "  status TEXT NOT NULL, registered_ms INTEGER NOT NULL, last_heartbeat_ms INTEGER NOT NULL,"
    "  not_ready_since_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS gpus("
    "  uuid TEXT PRIMARY KEY, node TEXT NOT NULL REFERENCES nodes(name) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL, model TEXT NOT NULL, model_key TEXT NOT NULL DEFAULT '',"
    "  vram_bytes INTEGER NOT NULL, tflops REAL NOT NULL,"
    "  vram_used INTEGER NOT NULL DEFAULT 0, utilization REAL NOT NULL DEFAULT 0,"
    "  temperature_c INTEGER, power_mw INTEGER, usage_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS gpus_node ON gpus(node, idx);"
    "CREATE TABLE IF NOT EXISTS profiles("
    "  name TEXT PRIMARY KEY, spec TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS workloads("
    "  name TEXT PRIMARY KEY, pool TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL,"
    "  reason TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS allocations("
    "  id TEXT PRIMARY KEY, workload TEXT NOT NULL REFERENCES workloads(name) ON DELETE CASCADE,"
    "  slot INTEGER NOT NULL, gpu_uuid TEXT NOT NULL, node TEXT NOT NULL, pool TEXT NOT NULL,"
    "  vram_request INTEGER NOT NULL, vram_limit INTEGER NOT NULL,"
    "  tflops_request REAL NOT NULL, tflops_limit REAL NOT NULL, qos TEXT NOT NULL,"
    "  remote INTEGER NOT NULL, state TEXT NOT NULL, lost_ms INTEGER,"
    "  vram_used INTEGER NOT NULL DEFAULT 0, busy_ns INTEGER NOT NULL DEFAULT 0,"
    "  throttled_ns INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS allocations_gpu ON allocations(gpu_uuid);"
    "CREATE INDEX IF NOT EXISTS allocations_node ON allocations(node);"
    "CREATE INDEX IF NOT EXISTS allocations_workload ON allocations(workload, slot);"
    "CREATE TABLE IF NOT EXISTS tokens("
    "  hash TEXT PRIMARY KEY, kind TEXT NOT NULL, node TEXT, created_ms INTEGER NOT NULL);";

/* Columns added after the first release, with the statement that adds each to an older file
 * (SQLite has no ADD COLUMN IF NOT EXISTS). A workload's lease (gpufuse run renews it; NULL for
 * workloads without one) and the SHA-256 of its worker token (NULL for workloads made before
 * tokens existed). */
static const struct {
    const char *table, *column, *add;
} added_columns[] = {
    {"workloads", "lease_ms", "ALTER TABLE workloads ADD COLUMN lease_ms INTEGER"},
    {"workloads", "lease_expires_ms", "ALTER TABLE workloads ADD COLUMN lease_expires_ms INTEGER"},
    {"workloads", "worker_token_sha256",
     "ALTER TABLE workloads ADD COLUMN worker_token_sha256 TEXT"},
    /* 'Ready', or 'Missing': its agent stopped reporting it while allocations still use it */
    {"gpus", "status", "ALTER TABLE gpus ADD COLUMN status TEXT NOT NULL DEFAULT 'Ready'"},
    /* 1: an admin cordoned it (POST /api/v1/gpus/UUID/cordon): it takes no new placement */
    {"gpus", "cordoned", "ALTER TABLE gpus ADD COLUMN cordoned INTEGER NOT NULL DEFAULT 0"},
};

static int has_column(sqlite3 *db, const char *table, const char *column)
{
    char sql[128];
    sqlite3_stmt *st = NULL;
    int found = 0;
    snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
    while (!found && sqlite3_step(st) == SQLITE_ROW)
        found = !strcmp((const char *)sqlite3_column_text(st, 1), column);
    sqlite3_finalize(st);
    return found;
}

static int migrate(sqlite3 *db, char **msg)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof added_columns / sizeof added_columns[0]; i++)
        if (!has_column(db, added_columns[i].table, added_columns[i].column))
            rc = sqlite3_exec(db, added_columns[i].add, NULL, NULL, msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "CREATE INDEX IF NOT EXISTS workloads_lease ON "
                              "workloads(lease_expires_ms) WHERE lease_expires_ms IS NOT NULL;"
                              "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
                          NULL, NULL, msg);
    return rc;
}

const char *gf_store_errmsg(gf_store *s)
{
    return s && s->db ? sqlite3_errmsg(s->db) : "no database";
}

gf_status gf_store_open(const char *dir, gf_store **out, char *err, size_t errlen)
{
    char path[4096];
    char *msg = NULL;
    gf_store *s = calloc(1, sizeof *s);
    if (!s) return GF_ENOMEM;
    snprintf(path, sizeof path, "%s/%s", dir, GF_STORE_FILE);
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open the database: %s; check that --data names a "
                 "writable directory", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    /* WAL + FULL: a commit returns only after the WAL is fsync'ed, so an acknowledged write
     * survives SIGKILL and power loss. */
    rc = sqlite3_exec(s->db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
                      NULL, NULL, &msg);
    if (rc == SQLITE_OK) rc = sqlite3_exec(s->db, schema, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db,
                          "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');"
                          "INSERT OR IGNORE INTO pools(name, created_ms) VALUES('default', "
                          "CAST(strftime('%s', 'now') AS INTEGER) * 1000);",
                          NULL, NULL, &msg);
    if (rc == SQLITE_OK) rc = migrate(s->db, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot set up the database: %s", path,
                 msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        goto fail;
    }
    *out = s;
    return GF_OK;
fail:
    sqlite3_close(s->db);
    free(s);
    return GF_EIO;
}

void gf_store_close(gf_store *s)
{
    if (!s) return;
    for (unsigned i = 0; i < s->n_cache; i++) sqlite3_finalize(s->cache[i].stmt);
    sqlite3_close(s->db);
    free(s);
}

static sqlite3_stmt *prepare(gf_store *s, const char *sql)
{
    for (unsigned i = 0; i < s->n_cache; i++)
        if (s->cache[i].sql == sql) {
            sqlite3_reset(s->cache[i].stmt);
            sqlite3_clear_bindings(s->cache[i].stmt);
            return s->cache[i].stmt;
        }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        gf_log(GF_LOG_ERROR, "server", "SQL prepare failed: %s: %s", sqlite3_errmsg(s->db), sql);
        return NULL;
    }
    if (s->n_cache < STMT_CACHE) {
        s->cache[s->n_cache].sql = sql;
        s->cache[s->n_cache].stmt = st;
        s->n_cache++;
    } else {
        gf_log(GF_LOG_WARN, "server", "statement cache full; raise STMT_CACHE");
    }
    return st;
}

/* Statements beyond the cache are finalized by their caller. */
static void done(gf_store *s, sqlite3_stmt *st)
{
    for (unsigned i = 0; i < s->n_cache; i++)
        if (s->cache[i].stmt == st) {
            sqlite3_reset(st);
            return;
        }
    sqlite3_finalize(st);
}

static int bind_args(sqlite3_stmt *st, const char *types, va_list ap)
{
    int rc = SQLITE_OK;
    for (int i = 0; types && types[i] && rc == SQLITE_OK; i++) {
        switch (types[i]) {
        case 't': {
            const char *t = va_arg(ap, const char *);
            rc = t ? sqlite3_bind_text(st, i + 1, t, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(st, i + 1);
            break;
        }
        case 'i': rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t)); break;
        case 'd': rc = sqlite3_bind_double(st, i + 1, va_arg(ap, double)); break;
        default: rc = SQLITE_MISUSE;
        }
    }
    return rc;
}

gf_status gf_store_begin(gf_store *s)
{
    return gf_store_exec(s, "BEGIN IMMEDIATE", NULL, "");
}

gf_status gf_store_commit(gf_store *s)
{
    return gf_store_exec(s, "COMMIT", NULL, "");
}

void gf_store_rollback(gf_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) gf_store_exec(s, "ROLLBACK", NULL, "");
}

uint64_t gf_store_generation(const gf_store *s)
{
    return s->generation;
}

gf_status gf_store_exec(gf_store *s, const char *sql, int *changes, const char *types, ...)
{
    s->generation++;
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return GF_EIO;
    va_list ap;
    va_start(ap, types);
    int rc = bind_args(st, types, ap);
    va_end(ap);
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        }
    }
    gf_status res = GF_OK;
    if (rc != SQLITE_DONE) {
        res = (rc & 0xff) == SQLITE_CONSTRAINT ? GF_EEXIST : GF_EIO;
        if (res == GF_EIO)
            gf_log(GF_LOG_ERROR, "server", "SQL failed: %s: %.200s", sqlite3_errmsg(s->db), sql);
    }
    if (changes) *changes = sqlite3_changes(s->db);
    done(s, st);
    return res;
}

static json_t *column_json(sqlite3_stmt *st, int c)
{
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER: return json_integer(sqlite3_column_int64(st, c));
    case SQLITE_FLOAT: return json_real(sqlite3_column_double(st, c));
    case SQLITE_TEXT:
        return json_stringn((const char *)sqlite3_column_text(st, c),
                            (size_t)sqlite3_column_bytes(st, c));
    default: return json_null();
    }
}

static int ends_with(const char *s, const char *suffix, size_t *stem)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n <= m || strcmp(s + n - m, suffix)) return 0;
    *stem = n - m;
    return 1;
}

json_t *gf_store_query(gf_store *s, const char *sql, const char *types, ...)
{
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return NULL;
    va_list ap;
    va_start(ap, types);
    int rc = bind_args(st, types, ap);
    va_end(ap);
    json_t *rows = json_array();
    int ncol = sqlite3_column_count(st);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = json_object();
        for (int c = 0; c < ncol; c++) {
            const char *name = sqlite3_column_name(st, c);
            char key[128];
            size_t stem;
            if (ends_with(name, "_json", &stem) && stem < sizeof key) {
                memcpy(key, name, stem);
                key[stem] = 0;
                const char *txt = (const char *)sqlite3_column_text(st, c);
                json_t *v = txt ? json_loads(txt, JSON_DECODE_ANY, NULL) : NULL;
                json_object_set_new(row, key, v ? v : json_null());
            } else if (ends_with(name, "_bool", &stem) && stem < sizeof key) {
                memcpy(key, name, stem);
                key[stem] = 0;
                json_object_set_new(row, key, json_boolean(sqlite3_column_int(st, c)));
            } else {
                json_object_set_new(row, name, column_json(st, c));
            }
        }
        json_array_append_new(rows, row);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE) {
        gf_log(GF_LOG_ERROR, "server", "SQL query failed: %s: %.200s", sqlite3_errmsg(s->db),
               sql);
        json_decref(rows);
        rows = NULL;
    }
    done(s, st);
    return rows;
}

gf_status gf_store_query_int(gf_store *s, const char *sql, int64_t dflt, int64_t *out,
                             const char *types, ...)
{
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return GF_EIO;
    va_list ap;
    va_start(ap, types);
    int rc = bind_args(st, types, ap);
    va_end(ap);
    *out = dflt;
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    gf_status res = GF_OK;
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL) *out = sqlite3_column_int64(st, 0);
    } else if (rc != SQLITE_DONE) {
        gf_log(GF_LOG_ERROR, "server", "SQL query failed: %s: %.200s", sqlite3_errmsg(s->db),
               sql);
        res = GF_EIO;
    }
    done(s, st);
    return res;
}
