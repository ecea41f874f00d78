# The backup role: Nomad and Consul snapshots and PostgreSQL dumps, kept on
# the NFS backup volume and copied to S3. Secrets come from Vault through the
# template block, never from this file.

job "backup-worker" {
  type        = "service"
  datacenters = ["*"]

  group "worker" {
    count = 1

    network {
      port "metrics" {
        to = 9090
      }
    }

    volume "backups" {
      type   = "host"
      source = "backups"
    }

    service {
      name     = "backup-worker"
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
        args  = ["worker", "--role", "backup"]
        ports = ["metrics"]
      }

      volume_mount {
        volume      = "backups"
        destination = "/mnt/backups"
      }

      # A dump in progress may take a while to reach a safe point.
      kill_timeout = "150s"
      kill_signal  = "SIGTERM"

      vault {
        role = "infraops-backup"
      }

      env {
        TEMPORAL_ADDRESS            = "temporal-frontend.service.consul:7233"
        TEMPORAL_NAMESPACE          = "default"
        OTEL_EXPORTER_OTLP_ENDPOINT = "tempo.service.consul:4317"
        METRICS_LISTEN              = ":9090"
        WORKER_SHUTDOWN_GRACE       = "120"
        BACKUP_LOCAL_DIR            = "/mnt/backups"
        NOMAD_ADDR                  = "https://nomad.service.consul:4646"
        NOMAD_CACERT                = "/secrets/nomad-ca.pem"
        CONSUL_HTTP_ADDR            = "https://consul.service.consul:8501"
        PG_HOST                     = "postgres-primary.service.consul"
        PG_PORT                     = "5432"
        PG_USER                     = "postgres"
        PG_DUMP_CONCURRENCY         = "4"
        S3_ENDPOINT                 = "https://s3.example.org"
        S3_BUCKET                   = "infraops-backups"
        S3_PREFIX                   = "backups"
        S3_REGION                   = "us-east-1"
      }

      template {
        destination = "secrets/infraops.env"
        env         = true
        data        = <<-EOT
          {{ with secret "kv/data/infraops/backup" }}
          NOMAD_TOKEN={{ .Data.data.nomad_token }}
          CONSUL_HTTP_TOKEN={{ .Data.data.consul_token }}
          PGPASSWORD={{ .Data.data.pg_password }}
          S3_ACCESS_KEY={{ .Data.data.s3_access_key }}
          S3_SECRET_KEY={{ .Data.data.s3_secret_key }}
          BACKUP_AGE_RECIPIENTS={{ .Data.data.age_recipients }}
          {{ end }}
        EOT
      }

      template {
        destination = "secrets/nomad-ca.pem"
        data        = <<-EOT
          {{ with secret "pki/cert/ca" }}{{ .Data.certificate }}{{ end }}
        EOT
      }

      resources {
        cpu    = 1000
        memory = 512
      }
    }
  }
}
