import type { Command } from '../context.js';
import { run } from './run.js';
import { create, start, stop, restart, kill, rm, wait, pause, unpause, rename } from './lifecycle.js';
import { ps } from './ps.js';
import { inspect, containerInspect } from './inspect.js';
import { logs } from './logs.js';
import { exec } from './exec.js';
import { top, stats } from './top-stats.js';
import { containerPrune } from './container-prune.js';
import { cleanup } from './cleanup.js';
import { volumeCreate, volumeLs, volumeInspect, volumeRm, volumePrune } from './volume.js';
import { images, imageInspectCmd, tag, rmi, imagePrune, history, importCmd, load, save } from './images.js';
import { diff, commit, exportCmd, cp } from './filesystem.js';
import { version, info } from './version.js';
import { build } from './build.js';
import { builderPrune } from './builder-prune.js';
import { systemDf } from './system-df.js';
import { systemPrune } from './system-prune.js';
import { attach } from './attach.js';

/** Every command by its full name; two-word names are "group verb". */
export const COMMANDS: Record<string, Command> = {
  run, create, start, stop, restart, kill, rm, wait, pause, unpause, rename, ps, inspect, logs, exec, attach, top, stats,
  diff, commit, export: exportCmd, cp,
  images, tag, rmi, history, import: importCmd, load, save,
  'image inspect': imageInspectCmd, 'image prune': imagePrune,
  'container inspect': containerInspect, 'container prune': containerPrune, 'container cleanup': cleanup,
  'volume create': volumeCreate, 'volume ls': volumeLs, 'volume inspect': volumeInspect, 'volume rm': volumeRm, 'volume prune': volumePrune,
  version, info, build,
  'builder prune': builderPrune, 'system df': systemDf, 'system prune': systemPrune,
};

/** Docker's alternative spellings. */
export const ALIASES: Record<string, string> = {
  'container run': 'run', 'container create': 'create', 'container start': 'start', 'container stop': 'stop',
  'container restart': 'restart', 'container kill': 'kill', 'container rm': 'rm', 'container remove': 'rm',
  'container wait': 'wait', 'container pause': 'pause', 'container unpause': 'unpause', 'container rename': 'rename',
  'container ls': 'ps', 'container list': 'ps', 'container ps': 'ps', 'container logs': 'logs', 'container exec': 'exec', 'container attach': 'attach',
  'container top': 'top', 'container stats': 'stats', 'container diff': 'diff', 'container commit': 'commit',
  'container export': 'export', 'container cp': 'cp',
  'image ls': 'images', 'image list': 'images', 'image tag': 'tag', 'image rm': 'rmi', 'image remove': 'rmi',
  'image history': 'history', 'image import': 'import', 'image load': 'load', 'image save': 'save',
  'volume list': 'volume ls', 'image build': 'build', 'builder build': 'build', 'volume remove': 'volume rm', 'system info': 'info',
};
