// Minimal start-up for a Nacos 3.x server assembled from Maven jars (install-nacos.sh 3).
// The official 3.x distribution starts through a `bootstrap` module that is not on Maven
// Central; the server needs its start-up phases announced before each Spring context is
// built (else: "IllegalStateException: Nacos don't start up"). This does that:
// core context (no web) -> server web context (API on nacos.server.main.port) ->
// optionally the console context (nacos.console.port) when nacos.deployment.type=merged.
package erpc.nacos;

import com.alibaba.nacos.NacosServerBasicApplication;
import com.alibaba.nacos.NacosServerWebApplication;
import com.alibaba.nacos.console.NacosConsole;
import com.alibaba.nacos.core.listener.startup.NacosStartUp;
import com.alibaba.nacos.core.listener.startup.NacosStartUpManager;
import com.alibaba.nacos.sys.env.DeploymentType;
import com.alibaba.nacos.sys.env.EnvUtil;
import org.springframework.boot.Banner;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

public final class ErpcNacos3Launcher {
    private ErpcNacos3Launcher() {
    }

    public static void main(String[] args) {
        String mode = System.getProperty("nacos.deployment.type", "server");
        DeploymentType type = DeploymentType.getType(mode);
        if (type != DeploymentType.SERVER && type != DeploymentType.MERGED) {
            throw new IllegalArgumentException("only server or merged supported, got " + mode);
        }
        EnvUtil.setDeploymentType(type);

        NacosStartUpManager.start(NacosStartUp.CORE_START_UP_PHASE);
        ConfigurableApplicationContext core = new SpringApplicationBuilder(NacosServerBasicApplication.class)
                .web(WebApplicationType.NONE).bannerMode(Banner.Mode.OFF).run(args);

        NacosStartUpManager.start(NacosStartUp.WEB_START_UP_PHASE);
        new SpringApplicationBuilder(NacosServerWebApplication.class).parent(core)
                .bannerMode(Banner.Mode.OFF).run(args);

        if (type == DeploymentType.MERGED) {
            NacosStartUpManager.start(NacosStartUp.CONSOLE_START_UP_PHASE);
            new SpringApplicationBuilder(NacosConsole.class).parent(core)
                    .bannerMode(Banner.Mode.OFF).run(args);
        }
    }
}
