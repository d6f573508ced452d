{{/*
A `linkgw records …` command on a schedule (seal, purge): one shape for both. Arguments (a dict):
  ctx: the root context; v: the job's values (schedule, timeZone, deadlines, history limits, resources);
  component: its name (records-seal); args: the command line; secret, secretKey: the database URL's Secret.
The keyring is mounted (both sign with the log's key). Both commands are idempotent: a failed run may be retried
(v.backoffLimit), and the next scheduled run does the same work again from what is stored.
*/}}
{{- define "linkgw.recordsCronJob" -}}
{{- $ := .ctx -}}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "linkgw.fullname" $ }}-{{ .component }}
  labels:
    {{- include "linkgw.labels" $ | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  schedule: {{ .v.schedule | quote }}
  {{- with .v.timeZone }}
  timeZone: {{ . | quote }}
  {{- end }}
  # Never two runs at once: each takes log writer locks or a store's purge work.
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {{ .v.startingDeadlineSeconds }}
  successfulJobsHistoryLimit: {{ .v.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ .v.failedJobsHistoryLimit }}
  jobTemplate:
    metadata:
      labels:
        {{- include "linkgw.labels" $ | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
    spec:
      backoffLimit: {{ .v.backoffLimit }}
      activeDeadlineSeconds: {{ .v.activeDeadlineSeconds }}
      template:
        metadata:
          labels:
            app.kubernetes.io/name: {{ include "linkgw.name" $ }}-{{ .component }}
            app.kubernetes.io/instance: {{ $.Release.Name }}
            app.kubernetes.io/component: {{ .component }}
        spec:
          restartPolicy: Never
          serviceAccountName: {{ include "linkgw.serviceAccountName" $ }}
          {{- include "linkgw.podSecurity" $ | nindent 10 }}
          {{- with $.Values.nodeSelector }}
          nodeSelector:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $.Values.tolerations }}
          tolerations:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          containers:
            - name: {{ .component }}
              image: {{ include "linkgw.image" $ }}
              imagePullPolicy: {{ $.Values.image.pullPolicy }}
              args: {{ .args | toJson }}
              env:
                - name: LINKGW_RECORDS_URL
                  valueFrom: { secretKeyRef: { name: {{ .secret }}, key: {{ .secretKey }} } }
                - { name: LINKGW_DATA_DIR, value: {{ include "linkgw.dataDir" $ | quote }} }
                - { name: LINKGW_LOG_LEVEL, value: {{ default "info" $.Values.config.LINKGW_LOG_LEVEL | quote }} }
                - { name: LINKGW_RECORDS_MIGRATE, value: {{ ternary "verify" "auto" $.Values.migrations.job.enabled | quote }} }
                {{- /* What the records commands read of the gateway's settings: how to unlock the keyring, the store's deadline. */}}
                {{- range $k, $val := $.Values.config }}
                {{- if or (hasPrefix "LINKGW_KEYRING_" $k) (hasPrefix "LINKGW_PKCS11_" $k) (eq $k "LINKGW_RECORD_STORE_TIMEOUT_MS") }}
                - { name: {{ $k }}, value: {{ $val | toString | quote }} }
                {{- end }}
                {{- end }}
              resources:
                {{- toYaml .v.resources | nindent 16 }}
              securityContext:
                {{- toYaml $.Values.securityContext | nindent 16 }}
              volumeMounts:
                - { name: data, mountPath: {{ include "linkgw.dataDir" $ }} }
                {{- include "linkgw.keyringMount" $ | nindent 16 }}
                - { name: tmp, mountPath: /tmp }
          volumes:
            - name: data
              emptyDir: { sizeLimit: 64Mi }
            {{- include "linkgw.keyringVolume" $ | nindent 12 }}
            - name: tmp
              emptyDir: { sizeLimit: 64Mi }
{{- end -}}
