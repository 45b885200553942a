import { randomBytes, randomInt } from 'node:crypto';

/** Container ids and generated names, in Docker's forms. */

export function newId(): string {
  return randomBytes(32).toString('hex');
}

const LEFT = [
  'admiring', 'agitated', 'amazing', 'angry', 'awesome', 'blissful', 'bold', 'brave', 'busy', 'charming', 'clever',
  'compassionate', 'confident', 'cool', 'cranky', 'dazzling', 'determined', 'distracted', 'dreamy', 'eager', 'ecstatic',
  'elastic', 'elated', 'elegant', 'epic', 'exciting', 'fervent', 'festive', 'flamboyant', 'focused', 'friendly',
  'frosty', 'funny', 'gallant', 'gifted', 'goofy', 'gracious', 'happy', 'hopeful', 'hungry', 'infallible', 'inspiring',
  'jolly', 'jovial', 'keen', 'kind', 'laughing', 'loving', 'lucid', 'magical', 'modest', 'musing', 'naughty', 'nervous',
  'nice', 'nifty', 'nostalgic', 'objective', 'optimistic', 'peaceful', 'pedantic', 'pensive', 'practical', 'priceless',
  'quirky', 'quizzical', 'relaxed', 'reverent', 'romantic', 'sad', 'serene', 'sharp', 'silly', 'sleepy', 'stoic',
  'strange', 'stupefied', 'suspicious', 'sweet', 'tender', 'thirsty', 'trusting', 'unruffled', 'upbeat', 'vibrant',
  'vigilant', 'vigorous', 'wizardly', 'wonderful', 'xenodochial', 'youthful', 'zealous', 'zen',
];
const RIGHT = [
  'agnesi', 'albattani', 'allen', 'archimedes', 'babbage', 'banach', 'bardeen', 'bartik', 'bell', 'bhabha', 'blackwell',
  'bohr', 'booth', 'borg', 'bose', 'brahmagupta', 'brown', 'carson', 'cerf', 'chandrasekhar', 'clarke', 'curie',
  'darwin', 'davinci', 'dijkstra', 'einstein', 'elion', 'euclid', 'euler', 'faraday', 'fermat', 'fermi', 'feynman',
  'franklin', 'galileo', 'gauss', 'goldberg', 'goodall', 'hamilton', 'hawking', 'heisenberg', 'hertz', 'hopper',
  'hypatia', 'jackson', 'jepsen', 'johnson', 'kalam', 'kepler', 'knuth', 'lamarr', 'lovelace', 'margulis', 'maxwell',
  'mccarthy', 'meitner', 'mendel', 'mirzakhani', 'montalcini', 'morse', 'napier', 'newton', 'nobel', 'noether',
  'pascal', 'pasteur', 'perlman', 'pike', 'poincare', 'ramanujan', 'ritchie', 'rosalind', 'sammet', 'shannon',
  'shockley', 'sinoussi', 'swartz', 'tesla', 'thompson', 'torvalds', 'turing', 'wescoff', 'wiles', 'williams',
  'wilson', 'wozniak', 'wright', 'yalow', 'yonath',
];

export function randomName(): string {
  return `${LEFT[randomInt(LEFT.length)]}_${RIGHT[randomInt(RIGHT.length)]}`;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function isValidName(name: string): boolean {
  return NAME_RE.test(name);
}
