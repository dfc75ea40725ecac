/**
 * docs/deploy.md says what the app does: every anchor it links to exists, every context key it
 * lists is one the app reads (and the other way round), and the outputs, alarms, dashboard, saved
 * query and metric names it gives an operator are the synthesized template's.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Template } from 'aws-cdk-lib/assertions';
import { FUNCTION_NAMES } from '../../functions/manifest.js';
import { CONFIG_CONTEXT_KEY } from '../../infra/config.js';
import { PROJECT_ROOT } from '../../infra/constructs/broker-function.js';
import { METRIC, METRICS_NAMESPACE } from '../../lib/metrics-names.js';
import { NO_BUNDLING, synthBroker, SYNTH_TIMEOUT } from './support.js';

const read = (file: string) => readFileSync(path.join(PROJECT_ROOT, file), 'utf8');
const deploy = read('docs/deploy.md');

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const inCode = markdown.replace(/```[\s\S]*?```/g, '');
  return new Set([...inCode.matchAll(/^#{1,6} (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase()
    .replace(/`/g, '').replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')));
}

/** The backticked names in the first column of the first table at or after `heading`. */
function firstColumn(heading: string): string[] {
  const start = deploy.indexOf(heading);
  expect(start, heading).toBeGreaterThan(-1);
  const rows = deploy.slice(start).split('\n');
  const table = rows.slice(rows.findIndex((l) => l.startsWith('|')));
  const body = table.slice(2, table.findIndex((l) => !l.startsWith('|')));
  return body.flatMap((row) => [...row.split('|')[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
}

describe('docs/deploy.md', () => {
  it('every internal link resolves: the files it links to, its own anchors and theirs', () => {
    const links = [...deploy.matchAll(/\]\(([a-z/-]*\.md)?#([^)]+)\)/g)];
    expect(links.length).toBeGreaterThan(20);
    for (const [link, file, anchor] of links) {
      const target = file ? read(path.join('docs', file)) : deploy;
      expect(anchors(target), link).toContain(anchor);
    }
    for (const [link, file] of deploy.matchAll(/\]\(((?!https?:|#)[^)#]+)(?:#[^)]*)?\)/g)) {
      expect(existsSync(path.join(PROJECT_ROOT, 'docs', file!)), link).toBe(true);
    }
  });

  it('the context options table lists exactly the keys the app reads', () => {
    const sources = ['infra/broker-app.ts', 'infra/constructs/broker-edge.ts'].map(read).join('\n');
    const read_ = new Set([CONFIG_CONTEXT_KEY,
      ...[...sources.matchAll(/(?:get|num|int|limit|tryGetContext)\('([a-zA-Z]+)'[,)]/g)].map((m) => m[1]!)]);
    expect(firstColumn('### Context options').sort()).toEqual([...read_].sort());
  });

  describe('against the template (custom domain and edge on)', () => {
    let template: Template;
    beforeAll(() => {
      template = synthBroker({
        ...NO_BUNDLING,
        edge: 'true',
        edgeDomainName: 'auth.example.com',
        edgeCertificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-123456789abc',
        domainName: 'origin.auth.example.com',
        certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/1a2b3c4d-aaaa-bbbb-cccc-123456789abc',
      }).template;
    }, SYNTH_TIMEOUT.timeout);

    it('the outputs table names exactly the outputs', () => {
      const documented = firstColumn('| output |');
      expect(documented.sort()).toEqual(Object.keys(template.toJSON()['Outputs'] as object).sort());
    });

    it('the alarms table names exactly the alarms, as <stack>-<alarm>', () => {
      const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((r) => (r as { Properties: { AlarmName: string } }).Properties.AlarmName);
      const documented = firstColumn('| alarm | fires when |')
        .filter((name) => name.startsWith('<stack>-'))
        .flatMap((name) => name.includes('<function>') ? FUNCTION_NAMES.map((f) => name.replace('<function>', f)) : [name])
        .map((name) => name.replace('<stack>', 'OAuthBroker'));
      expect(documented.sort()).toEqual(alarms.sort());
    });

    it('the dashboard, the saved query and every metric named are the template\'s and the code\'s', () => {
      const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard')).map((r) => (r as { Properties: { DashboardName: string } }).Properties.DashboardName);
      expect(dashboards).toEqual(['OAuthBroker']);
      expect(deploy).toContain('CloudWatch → Dashboards →\nOAuthBroker');
      const queries = Object.values(template.findResources('AWS::Logs::QueryDefinition')).map((r) => (r as { Properties: { Name: string } }).Properties.Name);
      expect(queries).toEqual(['OAuthBroker/follow-one-request']);
      expect(deploy).toContain('`OAuthBroker/follow-one-request`');
      const filters = Object.values(template.findResources('AWS::Logs::MetricFilter'))
        .flatMap((r) => (r as { Properties: { MetricTransformations: { MetricName: string }[] } }).Properties.MetricTransformations.map((t) => t.MetricName));
      const known = new Set<string>([...Object.values(METRIC), ...filters]);
      const named = [...deploy.matchAll(new RegExp(`\`${METRICS_NAMESPACE}/([A-Za-z0-9]+)\``, 'g'))].map((m) => m[1]!);
      expect(named.length).toBeGreaterThan(3);
      for (const name of named) expect(known, name).toContain(name);
    });
  });
});
