#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# HTTPS: a self-signed certificate made at test time (openssl CLI); the CLI and the agent reach
# the server with --ca-file / GPUFUSE_CA_FILE, and without it fail with a message that says how.
source "$(dirname "$0")/pool_lib.bash"
need_tools curl python3 openssl

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" >/dev/null 2>&1 ||
    { echo "FAIL tls/cert: openssl could not make a certificate"; exit 1; }
export CURL_CA=$tmp/cert.pem
start_server "$tmp/data" --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
[[ $URL == https://127.0.0.1:* ]] && pass tls/https_url || fail tls/https_url "$URL"
api GET /api/v1/pools
[ "$CODE" = 200 ] && pass tls/curl_with_ca || fail tls/curl_with_ca "got $CODE $BODY"

export GPUFUSE_SERVER=$URL GPUFUSE_TOKEN=$TOKEN
out=$("$gf" ls pools --ca-file "$tmp/cert.pem" 2>&1) && [[ $out == *default* ]] && pass tls/cli_ca_file ||
    fail tls/cli_ca_file "$out"
out=$(GPUFUSE_CA_FILE=$tmp/cert.pem "$gf" ls pools 2>&1) && [[ $out == *default* ]] && pass tls/cli_ca_env ||
    fail tls/cli_ca_env "$out"
out=$("$gf" ls pools 2>&1)
[ $? -ne 0 ] && [[ $out == *--ca-file* ]] && pass tls/untrusted_refused_with_hint ||
    fail tls/untrusted_refused_with_hint "$out"
out=$("$gf" ls pools --ca-file "$tmp/missing.pem" 2>&1)
[ $? -ne 0 ] && [[ $out == *missing.pem* ]] && pass tls/missing_ca_file_message || fail tls/missing_ca_file_message "$out"

CLI_CA=$tmp/cert.pem start_agent n1 "T4" --ca-file "$tmp/cert.pem"
wait_for 10 node_status_is n1 Ready && pass tls/agent_over_https || fail tls/agent_over_https "$(tail -5 "$tmp/agent-n1.log")"
curl -s --max-time 3 -o /dev/null "${URL/https/http}/healthz" && fail tls/plain_http_refused "answered plain HTTP" ||
    pass tls/plain_http_refused
stop_server || fail tls/sigterm_clean "exit status $?"
finish
