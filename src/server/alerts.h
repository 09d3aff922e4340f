/* SPDX-License-Identifier: Apache-2.0 */
/* The server's built-in alerts (issue 6): rules with a threshold, a duration ("for") and a
 * severity, evaluated periodically over the store's latest usage by a thread of their own;
 * transitions are sent to a webhook in Alertmanager's JSON format (with retries) and listed at
 * GET /api/v1/alerts. Also the state-derived /metrics of GPUs, vGPUs, nodes and pools
 * (metrics_pool.c). See docs/alerts.md and docs/metrics.md. */
#ifndef GF_SERVER_ALERTS_H
#define GF_SERVER_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#include "gpufuse/status.h"
#include "server/server.h"

typedef struct gf_srv_alerts gf_srv_alerts;

/* Reads cfg.alerts_file (JSON, docs/alerts.md; NULL = the built-in rules), registers the
 * collectors and starts the evaluation thread (and the webhook sender when cfg.alert_webhook or
 * the file names one). err names the file and the field on a bad config. */
gf_status gf_srv__alerts_init(gf_server *srv, char *err, size_t errlen);

/* Stops the threads (a notification being retried is dropped) and frees. Call before the store
 * closes. NULL-safe. */
void gf_srv__alerts_free(gf_server *srv);

/* One evaluation at now_ms (takes srv->lock). The thread calls it every eval interval. */
void gf_srv__alerts_eval(gf_server *srv, uint64_t now_ms);

/* Called under srv->lock when the allocator refused a workload (the allocation_failed rule). */
void gf_srv__alerts_note_refusal(gf_server *srv, const char *pool, const char *workload,
                                 const char *why, const char *msg);

/* GET /api/v1/alerts (under srv->lock). */
void gf_srv__alerts_list(gf_server *srv, gf_srv_resp *resp);

/* metrics_pool.c: registers the per GPU / vGPU / node / pool collector. */
void gf_srv__metrics_pool_init(gf_server *srv);

#endif
