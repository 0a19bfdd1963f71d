pub mod evm;
