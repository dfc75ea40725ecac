/**
 * oidc-provider (local/oidc-provider.ts) in a process of its own, timing every answer of its token
 * endpoint. Options come as JSON in BENCH_PROVIDER.
 */
import { startOidcProvider, type OidcProviderOptions } from '../../local/oidc-provider.js';
import { serveTimings } from './child.js';

const options = JSON.parse(process.env['BENCH_PROVIDER'] ?? '{}') as OidcProviderOptions;
const op = await startOidcProvider(options);
serveTimings(op.server, (req) => (req.method === 'POST' && req.url?.split('?')[0] === '/token' ? 'token' : undefined));
process.send!({ kind: 'ready', issuer: op.issuer });
