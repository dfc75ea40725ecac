/**
 * A stand-in for Secrets Manager on loopback, speaking its wire protocol (awsJson1_1) for the two
 * reads the functions make: `GetSecretValue` and `BatchGetSecretValue` (values by name, ARN or
 * partial ARN; the ids it lacks under `Errors`). The functions' cold starts read their secrets
 * from it, as they would from Secrets Manager in Lambda. Used by the bundle tests and the bench.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SecretsManagerStandIn {
  readonly url: string;
  /** The operations called so far, in order (`GetSecretValue`, `BatchGetSecretValue`), with the ids each asked for. */
  readonly calls: readonly { readonly operation: string; readonly ids: readonly string[] }[];
  close(): Promise<void>;
}

const ACCOUNT_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:';

export interface StandInOptions {
  /** How long each answer takes, as a network would. */
  readonly latencyMs?: number;
  /** Answer `BatchGetSecretValue` with AccessDeniedException, as for a role without that permission. */
  readonly denyBatch?: boolean;
}

export async function secretsManagerStandIn(secrets: Record<string, string>, options: StandInOptions = {}): Promise<SecretsManagerStandIn> {
  const calls: { operation: string; ids: string[] }[] = [];
  const arnOf = (name: string) => `${ACCOUNT_ARN}${name}-AbCdEf`;
  const nameOf = (id: string) => Object.keys(secrets).find((name) => id === name || id === arnOf(name) || id === `${ACCOUNT_ARN}${name}`);
  const entry = (name: string) => ({ ARN: arnOf(name), Name: name, SecretString: secrets[name], VersionId: 'v1', VersionStages: ['AWSCURRENT'], CreatedDate: 1.7e9 });
  const answer = (operation: string, input: { SecretId?: unknown; SecretIdList?: unknown }): { status: number; body: unknown } => {
    if (operation === 'BatchGetSecretValue') {
      const ids = Array.isArray(input.SecretIdList) ? input.SecretIdList.map(String) : [];
      calls.push({ operation, ids });
      if (options.denyBatch) return { status: 400, body: { __type: 'AccessDeniedException', message: 'not authorized to perform: secretsmanager:BatchGetSecretValue' } };
      if (ids.length === 0 || ids.length > 20) return { status: 400, body: { __type: 'InvalidParameterException', message: 'SecretIdList must hold 1 to 20 ids' } };
      const found = ids.map(nameOf);
      return {
        status: 200,
        body: {
          SecretValues: found.flatMap((name) => (name === undefined ? [] : [entry(name)])),
          Errors: ids.filter((_, i) => found[i] === undefined).map((id) => ({ SecretId: id, ErrorCode: 'ResourceNotFoundException', Message: "Secrets Manager can't find the specified secret." })),
        },
      };
    }
    if (operation === 'GetSecretValue') {
      const id = String(input.SecretId ?? '');
      calls.push({ operation, ids: [id] });
      const name = nameOf(id);
      return name === undefined
        ? { status: 400, body: { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." } }
        : { status: 200, body: entry(name) };
    }
    calls.push({ operation, ids: [] });
    return { status: 400, body: { __type: 'UnknownOperationException', message: operation } };
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const operation = String(req.headers['x-amz-target'] ?? '').replace(/^secretsmanager\./, '');
      let input: { SecretId?: unknown; SecretIdList?: unknown } = {};
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as typeof input;
      } catch {
        // answered as an unknown id
      }
      const { status, body } = answer(operation, input);
      const text = JSON.stringify(body);
      const send = () => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': '11111111-2222-3333-4444-555555555555' });
        res.end(text);
      };
      // On loopback (no latency) at once: a timer of 0 ms still waits for the next turn of the timers.
      if (options.latencyMs) setTimeout(send, options.latencyMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
