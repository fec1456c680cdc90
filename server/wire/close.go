package wire

// fanwire's own close codes (RFC 6455 leaves 4000-4999 to applications).
const (
	// CloseTokenExpired: the connection's token expired without a refresh.
	// The client should get a new token and reconnect.
	CloseTokenExpired = 4001
	// CloseDisconnected: the server disconnected this client on purpose
	// (e.g. the control API disconnected its user). Do not reconnect at once.
	CloseDisconnected = 4005
)
