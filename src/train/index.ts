export * from './batches';
export * from './checkpoint';
export * from './backbone';
export * from './heads';
export * from './ensemble';
export * from './pipeline';
