# The cleanup role: node cleanup and registry garbage collection.
# Secrets come from Vault through the template blocks, never from this file.

job "cleanup-worker" {
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
      name     = "cleanup-worker"
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
        args  = ["worker", "--role", "cleanup"]
        ports = ["metrics"]
      }

      # Longer than WORKER_SHUTDOWN_GRACE, so running activities can finish.
      kill_timeout = "90s"
      kill_signal  = "SIGTERM"

      vault {
        role = "infraops-cleanup"
      }

      env {
        TEMPORAL_ADDRESS            = "temporal-frontend.service.consul:7233"
        TEMPORAL_NAMESPACE          = "default"
        OTEL_EXPORTER_OTLP_ENDPOINT = "tempo.service.consul:4317"
        METRICS_LISTEN              = ":9090"
        WORKER_SHUTDOWN_GRACE       = "60"
        NOMAD_ADDR                  = "https://nomad.service.consul:4646"
        NOMAD_CACERT                = "/secrets/nomad-ca.pem"
        SSH_USER                    = "root"
        SSH_PORT                    = "22"
        SSH_KEY_PATH                = "/secrets/id_ed25519"
        SSH_CERT_PATH               = "/secrets/id_ed25519-cert.pub"
        SSH_HOST_CA_PATH            = "/secrets/ssh-host-ca.pub"
        SSH_CONNECT_TIMEOUT         = "10"
      }

      template {
        destination = "secrets/infraops.env"
        env         = true
        data        = <<-EOT
          {{ with secret "kv/data/infraops/cleanup" }}
          NOMAD_TOKEN={{ .Data.data.nomad_token }}
          {{ end }}
        EOT
      }

      template {
        destination = "secrets/id_ed25519"
        perms       = "0600"
        data        = <<-EOT
          {{ with secret "kv/data/infraops/cleanup" }}{{ .Data.data.ssh_private_key }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/id_ed25519-cert.pub"
        data        = <<-EOT
          {{ with secret "kv/data/infraops/cleanup" }}{{ .Data.data.ssh_certificate }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/ssh-host-ca.pub"
        data        = <<-EOT
          {{ with secret "kv/data/infraops/cleanup" }}{{ .Data.data.ssh_host_ca }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/nomad-ca.pem"
        data        = <<-EOT
          {{ with secret "pki/cert/ca" }}{{ .Data.certificate }}{{ end }}
        EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
