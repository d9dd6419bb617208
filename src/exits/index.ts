export * from './head';
export * from './ensemble';
export * from './network';
export * from './methods';
export * from './load';
