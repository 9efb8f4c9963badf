import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

/**
 * A throw-away Neo4j Community server for imbi-worker's tests, CI and demo.
 *
 * <p>Only the Bolt connector is on, bound to 127.0.0.1; auth is on with the
 * password from NEO4J_PASSWORD; data lives in a fresh temporary directory
 * that is deleted on exit; usage reporting (the one component that phones
 * home) is off. It prints "READY bolt://127.0.0.1:PORT" once the password is
 * set and runs until it gets SIGTERM/SIGINT.
 *
 * <p>Environment: NEO4J_PORT (default 7687), NEO4J_PASSWORD (at least 8
 * characters), NEO4J_DATA_DIR (optional parent of the temporary directory),
 * NEO4J_PAGECACHE (default 32m).
 */
public final class EmbeddedNeo4j {
    public static void main(String[] args) throws Exception {
        String port = env("NEO4J_PORT", "7687");
        String password = System.getenv("NEO4J_PASSWORD");
        if (password == null || password.length() < 8) {
            System.err.println("NEO4J_PASSWORD must be set to at least 8 characters");
            System.exit(2);
        }
        String parent = System.getenv("NEO4J_DATA_DIR");
        Path home = parent == null || parent.isEmpty()
                ? Files.createTempDirectory("imbi-neo4j-")
                : Files.createTempDirectory(Files.createDirectories(Path.of(parent)), "imbi-neo4j-");

        Map<String, String> conf = new LinkedHashMap<>();
        // Network: Bolt on loopback only, no HTTP(S), no TLS.
        conf.put("server.default_listen_address", "127.0.0.1");
        conf.put("server.bolt.enabled", "true");
        conf.put("server.bolt.listen_address", "127.0.0.1:" + port);
        conf.put("server.bolt.advertised_address", "127.0.0.1:" + port);
        conf.put("server.bolt.tls_level", "DISABLED");
        conf.put("server.http.enabled", "false");
        conf.put("server.https.enabled", "false");
        // Nothing calls out: usage data collection (UDC) is the only
        // outbound client in the Community jars; switch it off twice.
        conf.put("dbms.usage_report.enabled", "false");
        conf.put("internal.dbms.usage_report.udc_network_enabled", "false");
        // Driver telemetry is only collected for the usage report; off too.
        conf.put("server.bolt.telemetry.enabled", "false");
        conf.put("dbms.security.auth_enabled", "true");
        // A test that logs in with a wrong password must not lock the
        // shared "neo4j" user out for everyone else.
        conf.put("dbms.security.auth_max_failed_attempts", "0");
        // Stop in well under a second instead of Netty's graceful default
        // (a 2 s quiet period per event loop, ~11 s measured): the data is
        // thrown away anyway.
        conf.put("internal.dbms.bolt.netty_server_shutdown_quiet_period", "0");
        conf.put("internal.dbms.bolt.netty_server_shutdown_timeout", "1");
        // Small footprint: tests hold a few hundred nodes.
        conf.put("server.memory.pagecache.size", env("NEO4J_PAGECACHE", "32m"));
        conf.put("db.tx_log.rotation.retention_policy", "1 files");
        conf.put("db.checkpoint.interval.time", "15m");

        // The builder takes raw "name=value" settings only from a file; the
        // file is the same neo4j.conf syntax an operator would write.
        StringBuilder text = new StringBuilder();
        conf.forEach((k, v) -> text.append(k).append('=').append(v).append('\n'));
        Path confFile = Files.writeString(home.resolve("neo4j.conf"), text.toString());
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .loadPropertiesFromFile(confFile)
                .build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            long t0 = System.nanoTime();
            try {
                dbms.shutdown();
                System.err.printf("neo4j shut down in %d ms%n", (System.nanoTime() - t0) / 1_000_000);
            } finally {
                deleteQuietly(home);
                stopped.countDown();
            }
        }));

        // The embedded API runs with full rights, so it can set the initial
        // password without the "change required" dance a Bolt client needs.
        dbms.database("system").executeTransactionally(
                "ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
        System.out.println("READY bolt://127.0.0.1:" + port);
        System.out.flush();
        stopped.await();
    }

    private static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? fallback : v;
    }

    private static void deleteQuietly(Path root) {
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                    Files.deleteIfExists(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path dir, IOException exc) throws IOException {
                    Files.deleteIfExists(dir);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException ignored) {
            // best effort: a temp dir left behind is harmless
        }
    }
}
