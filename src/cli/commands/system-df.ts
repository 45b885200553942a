import type { Command } from '../context.js';
import { flag } from '../context.js';
import { formatRows, renderTemplate } from '../template.js';
import { agoText, humanDuration, humanSize } from '../../base/units.js';
import { statusText } from '../../engine/container.js';
import { diskUsage, type DiskUsage, type UsageRow } from '../../engine/disk-usage.js';
import type { Engine } from '../../engine/engine.js';
import { familiarOrId } from './image-names.js';

/** Docker's RECLAIMABLE cell: the size, and its share of the total when there is a total. */
function reclaimable(r: UsageRow, percent: boolean): string {
  const s = humanSize(r.reclaimable, 4);
  return percent && r.size > 0 ? `${s} (${Math.floor((r.reclaimable * 100) / r.size)}%)` : s;
}

/** Docker's TruncateID: the part after a "sha256:"-style prefix, 12 characters. */
const truncateId = (id: string): string => id.slice(id.indexOf(':') + 1).slice(0, 12);

/** Go's time.Time String() of a UTC instant: "2024-01-02 03:04:05.5 +0000 UTC". */
function goTimeString(ms: number): string {
  const iso = new Date(ms).toISOString();
  const frac = iso.slice(20, 23).replace(/0+$/, '');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? `.${frac}` : ''} +0000 UTC`;
}

/** "busybox:latest" → busybox / latest; a name without a tag shows "<none>" as tag. */
function repoAndTag(name: string | undefined): [string, string] {
  if (!name) return ['<none>', '<none>'];
  const i = name.lastIndexOf(':');
  return i > 0 && !name.slice(i).includes('/') ? [name.slice(0, i), name.slice(i + 1)] : [name, '<none>'];
}

/** The rows of each `system df -v` section, with Docker's field names (its formatter contexts). */
function verboseRows(engine: Engine, u: DiskUsage, trunc: boolean) {
  const now = Date.now();
  const images = [...u.items.images]
    .sort((a, b) => (b.image.config.created ?? '').localeCompare(a.image.config.created ?? ''))
    .map(({ image, sharedSize, containers }) => {
      const [repo, tag] = repoAndTag(image.repoTags[0]);
      return {
        Repository: repo, Tag: tag, ID: trunc ? truncateId(image.id) : image.id,
        CreatedSince: image.config.created ? agoText(new Date(image.config.created), now) : 'N/A',
        CreatedAt: image.config.created ?? '', Size: humanSize(image.size), SharedSize: humanSize(sharedSize),
        UniqueSize: humanSize(image.size - sharedSize), Containers: String(containers),
      };
    });
  const containers = [...u.items.containers]
    .sort((a, b) => b.container.Created.localeCompare(a.container.Created))
    .map(({ container: c, size }) => {
      const cmd = [c.Path, ...c.Args].join(' ');
      const shown = trunc && [...cmd].length > 20 ? `${[...cmd].slice(0, 19).join('')}…` : cmd;
      return {
        ID: trunc ? c.Id.slice(0, 12) : c.Id, Image: c.Config.Image || familiarOrId(engine, c.Image), Command: JSON.stringify(shown),
        LocalVolumes: String(c.Mounts.filter((m) => m.Type === 'volume').length), Size: humanSize(size),
        RunningFor: agoText(new Date(c.Created), now), CreatedAt: goTimeString(Date.parse(c.Created)), State: c.State.Status,
        Status: statusText(c.State, now, humanDuration), Names: c.Name.slice(1),
      };
    });
  const volumes = u.items.volumes.map(({ volume: v, links, size }) => ({
    Name: v.Name, Driver: v.Driver, Scope: v.Scope, Mountpoint: v.Mountpoint, Links: String(links), Size: humanSize(size),
  }));
  // Docker lists the cache least recently used first (ties by id).
  const buildCache = [...u.items.buildCache]
    .sort((a, b) => a.lastUsedAt - b.lastUsedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((r) => ({
      ID: `${trunc ? truncateId(r.id) : r.id}${r.inUse ? '*' : ''}`, Parent: '', CacheType: r.type, Description: r.description, Size: humanSize(r.size),
      CreatedAt: goTimeString(r.createdAt), CreatedSince: agoText(r.createdAt, now), LastUsedAt: goTimeString(r.lastUsedAt),
      LastUsedSince: agoText(r.lastUsedAt, now), UsageCount: String(r.usageCount), InUse: String(r.inUse), Shared: String(r.shared),
    }));
  return { images, containers, volumes, buildCache };
}

const SECTIONS = {
  images: {
    title: 'Images space usage:\n\n',
    table: 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}',
    headers: { Repository: 'REPOSITORY', Tag: 'TAG', ID: 'IMAGE ID', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', Size: 'SIZE', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE', Containers: 'CONTAINERS' },
  },
  containers: {
    title: '\nContainers space usage:\n\n',
    table: 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}',
    headers: { ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', LocalVolumes: 'LOCAL VOLUMES', Size: 'SIZE', RunningFor: 'CREATED', CreatedAt: 'CREATED AT', State: 'STATE', Status: 'STATUS', Names: 'NAMES' },
  },
  volumes: {
    title: '\nLocal Volumes space usage:\n\n',
    table: 'table {{.Name}}\t{{.Links}}\t{{.Size}}',
    headers: { Name: 'VOLUME NAME', Driver: 'DRIVER', Scope: 'SCOPE', Mountpoint: 'MOUNTPOINT', Links: 'LINKS', Size: 'SIZE' },
  },
  buildCache: {
    title: '',
    table: 'table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}',
    headers: {
      ID: 'CACHE ID', Parent: 'PARENT', CacheType: 'CACHE TYPE', Description: 'DESCRIPTION', Size: 'SIZE', CreatedAt: 'CREATED AT', CreatedSince: 'CREATED',
      LastUsedAt: 'LAST USED AT', LastUsedSince: 'LAST USED', UsageCount: 'USAGE', InUse: 'IN USE', Shared: 'SHARED',
    },
  },
} as const;

/** A row as Docker's formatter contexts marshal to JSON: a Go map, keys sorted. */
const asMap = (row: object) => new Map(Object.entries(row));

export const systemDf: Command = {
  spec: {
    name: 'system df', usage: 'berth system df [OPTIONS]', description: 'Show berth disk usage', maxArgs: 0,
    flags: [
      { name: 'format', type: 'string', description: 'Format output using a custom template' },
      { name: 'verbose', short: 'v', type: 'bool', description: 'Show detailed information on space usage' },
    ],
  },
  async run(ctx, p) {
    const engine = ctx.engine();
    const u = diskUsage(engine);
    const format = flag.str(p, 'format');
    if (flag.bool(p, 'verbose')) {
      const table = format === undefined || format === '' || format === 'table';
      const rows = verboseRows(engine, u, table);
      if (!table) {
        // Docker runs a custom format once over all four lists ("json" is {{json .}}).
        const data = { Images: rows.images.map(asMap), Containers: rows.containers.map(asMap), Volumes: rows.volumes.map(asMap), BuildCache: rows.buildCache.map(asMap) };
        ctx.stdout.write(`${renderTemplate(format === 'json' ? '{{json .}}' : format, data)}\n`);
        return 0;
      }
      let out = '';
      for (const key of ['images', 'containers', 'volumes', 'buildCache'] as const) {
        const s = SECTIONS[key];
        out += key === 'buildCache' ? `\nBuild cache usage: ${humanSize(u.buildCache.size, 4)}\n\n` : s.title;
        out += formatRows(undefined, rows[key], s.table, s.headers);
      }
      ctx.stdout.write(out);
      return 0;
    }
    const rows = ([['Images', u.images, true], ['Containers', u.containers, true], ['Local Volumes', u.volumes, true], ['Build Cache', u.buildCache, false]] as const)
      .map(([type, r, pct]) => ({ Type: type, TotalCount: String(r.total), Active: String(r.active), Size: humanSize(r.size, 4), Reclaimable: reclaimable(r, pct) }));
    ctx.stdout.write(formatRows(format, rows, 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
      { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' }));
    return 0;
  },
};
