package wire

// Remote actions: the plugin host's NATS service (wire contract §D).
const (
	// PluginHostService is the micro service name ($SRV.PING.<name>) and
	// PluginHostQueue its queue group.
	PluginHostService = "imbi-plugin-host"
	PluginHostQueue   = "imbi-plugin-host"
	// PluginCatalogSubject answers the catalog of every action a host runs.
	PluginCatalogSubject = "imbi.plugins.v1.catalog"
	// PluginRunPrefix + ".<plugin>.<action>" runs one action.
	PluginRunPrefix = "imbi.plugins.v1.run"
	// PluginAnnounceSubject is published by a host when it starts; workers
	// reload the catalog.
	PluginAnnounceSubject = "imbi.plugins.v1.announce"
)
