export * from './types';
export * from './head-stats';
export * from './exit-rules';
export * from './sweep';
export * from './budget';
export * from './hindsight';
export * from './seeds';
export * from './evaluate';
