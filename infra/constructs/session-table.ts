/**
 * The broker's one DynamoDB table (`lib/store/table.ts`: partition key `pk`, TTL `expiresAt`, the
 * two sparse keys-only session indexes of back-channel logout), encrypted with a customer-managed
 * KMS key, kept when the stack goes.
 */
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { acknowledgeNag } from '../nag.js';
import type { TableGrant } from '../../lib/store/scoped-table.js';
import { PARTITION_KEY, SESSION_INDEXES, TTL_ATTRIBUTE, type ItemAction } from '../../lib/store/table.js';

export type { ItemAction } from '../../lib/store/table.js';

/**
 * Which session indexes the table has. CloudFormation adds at most one global secondary index per
 * stack update, so a table created before back-channel logout gets them in two deploys: first
 * `'sub'`, then, once that index is `ACTIVE`, `'all'` (docs/deploy.md).
 */
export type SessionIndexes = 'all' | 'sub';

export interface SessionTableProps {
  /**
   * The session indexes to have.
   *
   * @default 'all'
   */
  readonly sessionIndexes?: SessionIndexes;
  /**
   * The key the table (and whatever else the stack chooses) is encrypted with.
   *
   * @default - a new customer-managed key with yearly rotation, retained with the table
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * A table this construct does not create: one kept from a deleted stack (docs/deploy.md,
   * "Redeploy after destroy"), encrypted with `encryptionKey`, which must then be given too. It
   * must have the session indexes of `sessionIndexes`.
   *
   * @default - a new table
   */
  readonly existingTableName?: string;
}

export class SessionTable extends Construct {
  readonly table: dynamodb.ITable;
  readonly encryptionKey: kms.IKey;
  /** The names of the session indexes this table has. */
  readonly indexNames: readonly string[];

  constructor(scope: Construct, id: string, props: SessionTableProps = {}) {
    super(scope, id);
    if (props.existingTableName !== undefined && !props.encryptionKey) {
      throw new TypeError('an existing table needs its encryption key (existingKeyArn): the functions decrypt through it');
    }
    this.encryptionKey = props.encryptionKey ?? new kms.Key(this, 'Key', {
      description: 'oauth broker: sessions, logins and the token key ring at rest',
      enableKeyRotation: true,
      // A retained table is unreadable without its key: keep them together.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const indexes = props.sessionIndexes === 'sub' ? [SESSION_INDEXES.sub] : [SESSION_INDEXES.sub, SESSION_INDEXES.sid];
    if (props.existingTableName !== undefined) {
      this.table = dynamodb.Table.fromTableAttributes(this, 'Table', {
        tableName: props.existingTableName,
        encryptionKey: this.encryptionKey,
        globalIndexes: indexes.map((i) => i.indexName),
      });
      this.indexNames = indexes.map((i) => i.indexName);
      return;
    }
    const table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TTL_ATTRIBUTE,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.encryptionKey,
    });
    // Sparse and keys-only: only session items carry the attributes, and a write that leaves them
    // alone (every refresh) costs the index nothing.
    for (const index of indexes) {
      table.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: { name: index.attribute, type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.KEYS_ONLY,
      });
    }
    this.indexNames = indexes.map((i) => i.indexName);
    this.table = table;
  }

  /**
   * Grants exactly `grant` (a function's entry in functions/manifest.ts), and the key use DynamoDB
   * makes on the caller's behalf to serve it, only through DynamoDB: reads need `kms:Decrypt` and
   * `kms:DescribeKey`; writes also `kms:Encrypt`, `kms:ReEncrypt*` and `kms:GenerateDataKey*` (the
   * set CDK's own `grantWriteData` and DynamoDB's managed key policy give). One statement per set
   * of actions:
   *
   * - item actions on the table only (`Table.grant` would add `<table>/index/*` once the table has
   *   indexes), on the items whose key starts with the granted prefixes only: a condition
   *   `ForAllValues:StringLike` on `dynamodb:LeadingKeys` (the partition key values a request
   *   names; every item action names exactly one, so the condition is never vacuously true);
   * - `sessionLookup`: `dynamodb:Query` on the session indexes, nothing else. Not key-scoped:
   *   on an index, `dynamodb:LeadingKeys` is the index's partition key (`idpSubKey`, `idpSidKey`),
   *   a keyed hash without a prefix to scope by; the keys-only indexes give the caller session
   *   keys, which it may only delete.
   */
  grantAccess(grantee: iam.IGrantable, grant: TableGrant): void {
    const byActions = new Map<string, { actions: ItemAction[]; prefixes: string[] }>();
    for (const [prefix, actions] of Object.entries(grant.items) as [string, readonly ItemAction[]][]) {
      if (actions.length === 0) continue;
      const sorted = [...new Set(actions)].sort();
      const group = byActions.get(sorted.join(' ')) ?? { actions: sorted, prefixes: [] };
      group.prefixes.push(`${prefix}*`);
      byActions.set(sorted.join(' '), group);
    }
    for (const { actions, prefixes } of byActions.values()) {
      iam.Grant.addToPrincipal({
        grantee,
        actions,
        resourceArns: [this.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': prefixes.sort() } },
      });
    }
    if (grant.sessionLookup) {
      iam.Grant.addToPrincipal({ grantee, actions: ['dynamodb:Query'], resourceArns: this.indexNames.map((name) => `${this.table.tableArn}/index/${name}`) });
    }
    const itemActions = [...byActions.values()].flatMap((g) => g.actions);
    if (itemActions.length === 0 && !grant.sessionLookup) return;
    this.grantKeyUse(grantee, itemActions.some((a) => a !== 'dynamodb:GetItem'));
  }

  private grantKeyUse(grantee: iam.IGrantable, writes: boolean): void {
    grantKeyViaService(this.encryptionKey, grantee, 'dynamodb', ['kms:Decrypt', 'kms:DescribeKey', ...(writes ? ['kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'] : [])]);
  }
}

/**
 * Grants `actions` on `key` to `grantee` only through `service` (`kms:ViaService`). A key of this
 * stack gets the statement in its key policy; an imported key (a kept one, docs/deploy.md
 * "Redeploy after destroy") in the grantee's policy, since its key policy is not the stack's. (CDK's
 * own `key.grant(new ViaServicePrincipal(...))` adds nothing at all for an imported key.)
 */
export function grantKeyViaService(key: kms.IKey, grantee: iam.IGrantable, service: 'dynamodb' | 'secretsmanager', actions: readonly string[]): void {
  const viaService = `${service}.${Stack.of(grantee as unknown as Construct).region}.amazonaws.com`;
  if (key instanceof kms.Key) {
    key.grant(new kms.ViaServicePrincipal(viaService, grantee.grantPrincipal), ...actions);
    return;
  }
  iam.Grant.addToPrincipal({ grantee, actions: [...actions], resourceArns: [key.keyArn], conditions: { StringEquals: { 'kms:ViaService': viaService } } });
  for (const action of actions.filter((a) => a.endsWith('*'))) {
    acknowledgeNag(grantee.grantPrincipal as unknown as Construct, `AwsSolutions-IAM5[Action::${action}]`,
      `${action} is the action family DynamoDB needs on the table's key to write encrypted items (the set of CDK's grantWriteData and DynamoDB's managed key policy), on the one kept key only and only through ${service} (kms:ViaService); with a key of the stack the same statement is in the key policy.`);
  }
}
