/** Looking into the broker's table from a test (a scan: tests only, never the broker). */
import type { ScanCommandOutput } from '@aws-sdk/client-dynamodb';
import type { Table } from '../../lib/store/table.js';

/** How many items of `table` have a key starting with `prefix` (`session#`, `login#`, `logout-jti#`). */
export async function countItems(table: Table, prefix: string): Promise<number> {
  let count = 0;
  let start: ScanCommandOutput['LastEvaluatedKey'];
  do {
    const out = await table.call('Scan', {
      TableName: table.name,
      ExclusiveStartKey: start,
      FilterExpression: 'begins_with(pk, :p)',
      ExpressionAttributeValues: { ':p': { S: prefix } },
      ProjectionExpression: 'pk',
    });
    count += out.Items?.length ?? 0;
    start = out.LastEvaluatedKey;
  } while (start);
  return count;
}
