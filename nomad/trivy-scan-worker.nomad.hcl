# The trivy role: scans every running image through the Trivy server.
# Secrets come from Vault through the template block, never from this file.

job "trivy-scan-worker" {
  type        = "service"
  datacenters = ["*"]

  group "worker" {
    count = 1

    network {
      port "metrics" {
        to = 9090
      }
    }

    service {
      name     = "trivy-scan-worker"
      port     = "metrics"
      tags     = ["infraops", "prometheus", "prometheus.path=/metrics"]
      provider = "consul"

      check {
        type     = "http"
        path     = "/metrics"
        interval = "30s"
        timeout  = "5s"
      }
    }

    task "worker" {
      driver = "docker"

      config {
        image = "ghcr.io/infraops/infraops:0.1.0"
        args  = ["worker", "--role", "trivy"]
        ports = ["metrics"]
      }

      kill_timeout = "90s"
      kill_signal  = "SIGTERM"

      vault {
        role = "infraops-trivy"
      }

      env {
        TEMPORAL_ADDRESS            = "temporal-frontend.service.consul:7233"
        TEMPORAL_NAMESPACE          = "default"
        OTEL_EXPORTER_OTLP_ENDPOINT = "tempo.service.consul:4317"
        METRICS_LISTEN              = ":9090"
        WORKER_SHUTDOWN_GRACE       = "60"
        NOMAD_ADDR                  = "https://nomad.service.consul:4646"
        NOMAD_CACERT                = "/secrets/nomad-ca.pem"
        TRIVY_SERVER_ADDR           = "http://trivy-server.service.consul:4954"
        TRIVY_CACHE_DIR             = "/local/trivy-cache"
        TRIVY_DB_HOST               = "postgres-shared.service.consul"
        TRIVY_DB_PORT               = "5432"
        TRIVY_DB_NAME               = "trivy"
        DB_SSLMODE                  = "verify-ca"
        DB_SSLROOTCERT              = "/secrets/postgres-ca.pem"
      }

      template {
        destination = "secrets/infraops.env"
        env         = true
        data        = <<-EOT
          {{ with secret "kv/data/infraops/trivy" }}
          NOMAD_TOKEN={{ .Data.data.nomad_token }}
          TRIVY_TOKEN={{ .Data.data.trivy_token }}
          TRIVY_DB_USER={{ .Data.data.db_user }}
          TRIVY_DB_PASSWORD={{ .Data.data.db_password }}
          {{ end }}
        EOT
      }

      template {
        destination = "secrets/nomad-ca.pem"
        data        = <<-EOT
          {{ with secret "pki/cert/ca" }}{{ .Data.certificate }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/postgres-ca.pem"
        data        = <<-EOT
          {{ with secret "kv/data/infraops/trivy" }}{{ .Data.data.db_ca }}{{ end }}
        EOT
      }

      resources {
        cpu    = 1000
        memory = 1024
      }
    }
  }
}
