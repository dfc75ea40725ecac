/**
 * (v2) The upgrade path for a table created before back-channel logout: CloudFormation adds one
 * global secondary index per stack update, so `-c sessionIndexes=sub` deploys the first alone.
 */
import { describe, expect, it } from 'vitest';
import { logicalId, NO_BUNDLING, roleStatements, synthBroker, SYNTH_TIMEOUT } from './support.js';

describe('context sessionIndexes=sub (the first deploy of an upgrade)', () => {
  it('gives the table only the sub index, and back-channel logout may query only it', () => {
    const { stack, template } = synthBroker({ ...NO_BUNDLING, sessionIndexes: 'sub' });
    const table = template.toJSON()['Resources'][logicalId(stack.sessions.table)];
    expect(table.Properties.GlobalSecondaryIndexes).toEqual([
      { IndexName: 'by-idp-sub', KeySchema: [{ AttributeName: 'idpSubKey', KeyType: 'HASH' }], Projection: { ProjectionType: 'KEYS_ONLY' } },
    ]);
    const query = roleStatements(template, logicalId(stack.functions['backchannel-logout'].role)).find((s) => (s.Action as string[]).includes('dynamodb:Query'))!;
    expect(query.Resource).toEqual({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack.sessions.table), 'Arn'] }, '/index/by-idp-sub']] });
  }, SYNTH_TIMEOUT.timeout);
});
