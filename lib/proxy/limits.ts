/**
 * The API proxy's limits (CONTRACT.md, "API proxy for web apps"), shared by the configuration's
 * checks, the proxy itself and the CDK stack.
 *
 * A Lambda function takes and returns at most 6 MB (synchronous invocation), and API Gateway
 * carries a binary body base64-encoded inside that JSON event or result: 4 bytes for every 3. Less
 * an allowance for the event's headers, cookies and the rest of the envelope, that leaves
 * `MAX_BODY_BYTES` of body each way.
 */
export const LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024;
const ENVELOPE_BYTES = 64 * 1024;
/** The most a configuration may allow (`apis.<name>.maxBodyBytes`): what Lambda can carry, base64-encoded. */
export const MAX_BODY_BYTES = Math.floor(((LAMBDA_PAYLOAD_BYTES - ENVELOPE_BYTES) * 3) / 4);
/** The default cap of request and answer bodies, each way. */
export const DEFAULT_BODY_BYTES = 4 * 1024 * 1024;

/** No answer from the API within this long: `504`. Below API Gateway's integration limit (30 s). */
export const API_TIMEOUT_SECONDS = 25;
/**
 * Everything one proxied request does (a wait for a concurrent refresh, an upstream refresh, the
 * API call) ends this long after it started, so the broker answers, `504` included, before API
 * Gateway gives up at 30 s; the API call gets the lesser of its timeout and what is left.
 */
export const PROXY_BUDGET_MS = 28_000;
