//! openraft's `RaftNetworkFactory` over the bus.
