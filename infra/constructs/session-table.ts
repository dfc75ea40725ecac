/**
 * The broker's one DynamoDB table (`lib/store/table.ts`: partition key `pk`, TTL `expiresAt`),
 * encrypted with a customer-managed KMS key, kept when the stack goes.
 */
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { PARTITION_KEY, TTL_ATTRIBUTE } from '../../lib/store/table.js';

/** The single-item operations the broker uses; nothing else is ever granted. */
export type ItemAction = 'dynamodb:GetItem' | 'dynamodb:PutItem' | 'dynamodb:UpdateItem' | 'dynamodb:DeleteItem';

export interface SessionTableProps {
  /**
   * The key the table (and whatever else the stack chooses) is encrypted with.
   *
   * @default - a new customer-managed key with yearly rotation, retained with the table
   */
  readonly encryptionKey?: kms.IKey;
}

export class SessionTable extends Construct {
  readonly table: dynamodb.ITable;
  readonly encryptionKey: kms.IKey;

  constructor(scope: Construct, id: string, props: SessionTableProps = {}) {
    super(scope, id);
    this.encryptionKey = props.encryptionKey ?? new kms.Key(this, 'Key', {
      description: 'oauth broker: sessions, logins and the token key ring at rest',
      enableKeyRotation: true,
      // A retained table is unreadable without its key: keep them together.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TTL_ATTRIBUTE,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.encryptionKey,
    });
  }

  /**
   * Grants exactly `actions` on the table, and the key use DynamoDB makes on the caller's behalf
   * to serve them, only through DynamoDB: reads need `kms:Decrypt` and `kms:DescribeKey`; writes
   * also `kms:Encrypt`, `kms:ReEncrypt*` and `kms:GenerateDataKey*` (the set CDK's own
   * `grantWriteData` and DynamoDB's managed key policy give). `Table.grant` alone gives no key
   * use, and `grantReadWriteData` grants far more table actions than the broker uses.
   */
  grantItems(grantee: iam.IGrantable, ...actions: ItemAction[]): void {
    if (actions.length === 0) return;
    this.table.grant(grantee, ...actions);
    const dynamodbService = new kms.ViaServicePrincipal(`dynamodb.${Stack.of(this).region}.amazonaws.com`, grantee.grantPrincipal);
    const writes = actions.some((a) => a !== 'dynamodb:GetItem');
    this.encryptionKey.grant(dynamodbService, 'kms:Decrypt', 'kms:DescribeKey', ...(writes ? ['kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'] : []));
  }
}
