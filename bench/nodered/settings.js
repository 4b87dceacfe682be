// Node-RED settings for bench/ingest.py: the everyday low-code alternative (an MQTT-in
// node feeding a function node that INSERTs each message into PostgreSQL with `pg`).
// Headless (no editor, no admin API), loopback only, no module installs at run time:
// `pg` comes from this folder's package.json (bench/ingest.py links node_modules into
// the temporary userDir it starts Node-RED with).
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: parseInt(process.env.CYL_BENCH_NODERED_PORT || "18880", 10),
    httpAdminRoot: false,
    httpNodeRoot: false,
    flowFile: "flows.json",
    credentialSecret: false,
    functionExternalModules: true,
    externalModules: { modules: { allowInstall: false } },
    functionTimeout: 0,
    diagnostics: { enabled: false },
    runtimeState: { enabled: false },
    telemetry: { enabled: false },
    logging: { console: { level: "info", metrics: false, audit: false } },
};
