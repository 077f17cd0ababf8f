# Never ends: the host's hard timeout must stop the guest and say so.
note "hanging on purpose"
sleep infinity
