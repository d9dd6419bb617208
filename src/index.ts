// Public API of ztw.
export * from './tensor';
export * as nn from './nn';
export * as optim from './optim';
export * from './io';
